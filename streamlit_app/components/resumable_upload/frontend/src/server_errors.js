// What the tus server said, for people: tus-js-client's own message is a request dump.

const BY_STATUS = {
  401: "Not signed in, or the upload token expired: reload the page and upload again.",
  413: "Larger than the upload limit per file.",
  507: "Not enough free disk space on the server for this file.",
};

export function describe(error, response) {
  const xhr = response?.body?.xhr ?? error?.originalResponse?.getUnderlyingObject?.();
  const status = response?.status ?? xhr?.status;
  const text = (xhr?.responseText ?? "").trim();
  if (!status) {
    return "The upload server does not answer: the upload stopped (Retry resumes it).";
  }
  // The server writes its refusals as "Title: message" (like LakehouseError's title and msg).
  if (text && status >= 400 && status < 600) return text;
  return BY_STATUS[status] ?? `The upload server answered ${status}.`;
}
