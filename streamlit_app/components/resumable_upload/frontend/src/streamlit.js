// The Streamlit custom-component protocol (v1), which streamlit-component-lib wraps: we speak it
// directly and so bundle neither React nor Arrow, which that library pulls in.

function send(type, data = {}) {
  window.parent.postMessage({ isStreamlitMessage: true, type, ...data }, "*");
}

export function onRender(callback) {
  window.addEventListener("message", (event) => {
    if (event.data?.type === "streamlit:render") callback(event.data.args ?? {});
  });
  send("streamlit:componentReady", { apiVersion: 1 });
}

let lastHeight = null;

export function setFrameHeight(height) {
  if (height === lastHeight) return;
  lastHeight = height;
  send("streamlit:setFrameHeight", { height });
}

export function setComponentValue(value) {
  send("streamlit:setComponentValue", { value, dataType: "json" });
}
