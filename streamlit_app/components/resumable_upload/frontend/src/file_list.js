// One line per file under the Dashboard: its dataset and mode without opening the file card,
// and its own progress, speed and time left (the status bar only shows them for all files).

// file id -> {at, bytes, speed, movedAt}: speed over recent seconds, not since the start (a
// resumed upload would otherwise count the bytes sent before the break)
const samples = new Map();
const STALLED_MS = 5000; // no byte for this long: the connection is down and tus is retrying

function bytes(n) {
  const units = ["B", "KB", "MB", "GB", "TB"];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) {
    n /= 1024;
    i += 1;
  }
  return `${n.toFixed(i && n < 10 ? 1 : 0)} ${units[i]}`;
}

function duration(s) {
  if (s < 60) return `${Math.ceil(s)} s`;
  if (s < 3600) return `${Math.round(s / 60)} min`;
  return `${Math.floor(s / 3600)} h ${Math.round((s % 3600) / 60)} min`;
}

function sample(file) {
  const now = performance.now();
  const done = file.progress.bytesUploaded || 0;
  const last = samples.get(file.id);
  // Restart the measure on the first bytes too: a resumed upload jumps to its old offset.
  if (!last || done < last.bytes || last.bytes === 0) {
    const first = { at: now, bytes: done, speed: null, movedAt: now };
    samples.set(file.id, first);
    return first;
  }
  if (now - last.at < 1000) return last;
  const recent = ((done - last.bytes) * 1000) / (now - last.at);
  const speed = last.speed === null ? recent : 0.7 * last.speed + 0.3 * recent;
  const movedAt = done > last.bytes ? now : last.movedAt;
  const next = { at: now, bytes: done, speed, movedAt };
  samples.set(file.id, next);
  return next;
}

function status(file) {
  if (file.error) return ["error", file.error];
  if (file.progress.uploadComplete) return ["done", "uploaded"];
  if (!file.progress.uploadStarted) return ["waiting", "ready"];
  if (file.isPaused) return ["paused", `paused at ${file.progress.percentage ?? 0}%`];
  const total = file.progress.bytesTotal || file.size || 0;
  const done = file.progress.bytesUploaded || 0;
  const parts = [`${file.progress.percentage ?? 0}%`, `${bytes(done)} of ${bytes(total)}`];
  const { speed, movedAt } = sample(file);
  const still = performance.now() - movedAt;
  if (still >= STALLED_MS) {
    parts.push(`no answer from the upload server for ${duration(still / 1000)}: retrying`);
    return ["retrying", parts.join(" · ")];
  }
  if (speed) parts.push(`${bytes(speed)}/s`, `${duration((total - done) / speed)} left`);
  return ["uploading", parts.join(" · ")];
}

export function renderFileList(list, files) {
  const rows = files.map((file) => {
    const [state, text] = status(file);
    const row = document.createElement("li");
    row.dataset.fileName = file.name;
    row.dataset.state = state;
    const name = document.createElement("span");
    name.className = "name";
    name.textContent = file.name;
    const target = document.createElement("span");
    target.className = "target";
    target.textContent = ` → bronze.${file.meta.dataset || "?"} (${file.meta.mode || "append"})`;
    const what = document.createElement("span");
    what.className = "status";
    what.textContent = ` ${text}`;
    row.append(name, target, what);
    return row;
  });
  list.replaceChildren(...rows);
  for (const id of samples.keys()) {
    if (!files.some((f) => f.id === id)) samples.delete(id);
  }
}
