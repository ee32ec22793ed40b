// The Upload page's uploader: Uppy's Dashboard sending files over tus 1.0 to the lake's upload
// server, in chunks, resuming after a dropped connection. Python gets the finished uploads.
import Uppy from "@uppy/core";
import Dashboard from "@uppy/dashboard";
import Tus from "@uppy/tus";
import "@uppy/core/css/style.min.css";
import "@uppy/dashboard/css/style.min.css";
import "./style.css";

import { datasetNameFromFilename } from "./dataset_name.js";
import { renderFileList } from "./file_list.js";
import { describe } from "./server_errors.js";
import * as Streamlit from "./streamlit.js";

window.datasetNameFromFilename = datasetNameFromFilename; // the browser test compares it to Python's

const MB = 1024 * 1024;
const DASHBOARD_HEIGHT = 360;
// 50 MB per PATCH: a dropped connection loses at most one chunk, and a request stays far
// below proxies' body limits and timeouts.
const CHUNK_SIZE = 50 * MB;
// ~3.5 minutes of retries: outlasts a restart of the upload server (about a minute).
const RETRY_DELAYS = [0, 1000, 3000, 5000, 10000, 10000, 20000, 20000, 30000, 30000, 60000];
// Tokens live an hour; a long upload asks the page for a fresh one well before that.
const TOKEN_REFRESH_MS = 20 * 60 * 1000;

let uppy = null;
let token = null;
let tokenAsks = 0;
let tokenWaiters = null; // while a fresh token is asked for: the requests waiting for it
const completed = []; // every finished upload of this page view, in the order they finished

function report() {
  // A new `asks` count makes the page rerun and hand over a fresh token, even with no new upload.
  Streamlit.setComponentValue({ completed: [...completed], asks: tokenAsks });
}

function askForToken() {
  tokenAsks += 1;
  tokenWaiters ??= [];
  report();
}

function tokenArrived(fresh) {
  token = fresh;
  (tokenWaiters ?? []).forEach((resolve) => resolve());
  tokenWaiters = null;
}

// Resolves once the page has handed over a fresh token (or after 30 s, to fail as before).
// A request sent with the old one would fail again, and a 4xx on tus's HEAD makes
// tus-js-client drop the upload and start over from byte 0.
function freshToken() {
  if (tokenWaiters === null) return null;
  return new Promise((resolve) => {
    tokenWaiters.push(resolve);
    setTimeout(resolve, 30000);
  });
}

function uploadId(uploadURL) {
  return new URL(uploadURL, window.location.href).pathname.replace(/\/+$/, "").split("/").pop();
}

const modeField = {
  id: "mode",
  name: "Mode",
  render({ value, onChange, form }, h) {
    return h(
      "select",
      {
        form,
        value: value || "append",
        class: "uppy-u-reset uppy-c-textInput uppy-Dashboard-FileCard-input",
        id: "uppy-Dashboard-FileCard-input-mode",
        onChange: (event) => onChange(event.target.value),
      },
      h("option", { value: "append" }, "append: add a batch"),
      h("option", { value: "replace" }, "replace: hide the dataset's earlier batches"),
    );
  },
};

function onShouldRetry(error, attempt, options, next) {
  // A 401 mid-upload is an expired token: ask the page for a new one and try again.
  if (error?.originalResponse?.getStatus() === 401 && attempt < 3) {
    askForToken();
    return true;
  }
  return next(error);
}

function limit(mb) {
  return mb >= 1024 && mb % 1024 === 0 ? `${(mb / 1024).toLocaleString("en")} GB` : `${mb.toLocaleString("en")} MB`;
}

function create(args) {
  const maxMb = args.max_file_mb;
  uppy = new Uppy({
    id: "ratatouille-upload",
    autoProceed: false, // dataset and mode are chosen before Upload
    restrictions: {
      maxFileSize: maxMb * MB,
      allowedFileTypes: args.types.map((t) => `.${t}`),
      requiredMetaFields: ["dataset"],
    },
  });
  uppy.use(Dashboard, {
    inline: true,
    target: "#dashboard",
    width: "100%",
    height: DASHBOARD_HEIGHT,
    hideProgressDetails: false, // bytes and time left in the status bar (per file: the list)
    proudlyDisplayPoweredByUppy: false,
    note: `Up to ${limit(maxMb)} per file. ✎ on a file sets its dataset and mode.`,
    metaFields: [{ id: "dataset", name: "Dataset", placeholder: "lower_snake_case" }, modeField],
  });
  uppy.use(Tus, {
    endpoint: args.endpoint,
    // No `headers` option: tus-js-client copies it when an upload starts, so a token renewed
    // later would not reach it; and XHR would join both into "Bearer a, Bearer a".
    chunkSize: CHUNK_SIZE,
    limit: 3,
    retryDelays: RETRY_DELAYS,
    removeFingerprintOnSuccess: true,
    allowedMetaFields: ["filename", "dataset", "mode", "filetype"],
    onShouldRetry,
    async onBeforeRequest(req) {
      await freshToken();
      // The newest token, read per request: also for an upload that started with an older one.
      if (token) req.setHeader("Authorization", `Bearer ${token}`);
    },
    onError(error) {
      error.message = describe(error); // shown per file and in the Dashboard's informer
    },
  });
  uppy.on("file-added", (file) => {
    uppy.setFileMeta(file.id, {
      dataset: datasetNameFromFilename(file.name),
      mode: "append",
      filename: file.name,
      filetype: file.type || "application/octet-stream",
    });
  });
  uppy.on("upload-success", (file, response) => {
    const { dataset, mode } = file.meta;
    completed.push({ id: uploadId(response.uploadURL), name: file.name, size: file.size, dataset, mode });
    report();
  });
  let drawing = false;
  const draw = () => {
    if (drawing) return;
    drawing = true;
    requestAnimationFrame(() => {
      drawing = false;
      renderFileList(document.getElementById("files"), uppy.getFiles());
      Streamlit.setFrameHeight(document.body.scrollHeight);
    });
  };
  uppy.on("state-update", draw);
  // While uploads run: a fresh token now and then, and a redraw each second, so a stalled
  // upload says so (no progress event comes while the server is away).
  let timers = [];
  uppy.on("upload", () => {
    if (timers.length) return;
    timers = [setInterval(askForToken, TOKEN_REFRESH_MS), setInterval(draw, 1000)];
  });
  uppy.on("complete", () => {
    const running = (f) => f.progress.uploadStarted && !f.progress.uploadComplete && !f.error;
    if (uppy.getFiles().some(running)) return; // another Upload click's files go on
    timers.forEach(clearInterval);
    timers = [];
  });
  Streamlit.setFrameHeight(document.body.scrollHeight);
}

Streamlit.onRender((args) => {
  tokenArrived(args.token ?? null); // every rerun hands over a fresh one; the next request sends it
  if (uppy === null) create(args);
});
