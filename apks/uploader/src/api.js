// What the server answers, in the user's terms. Errors are JSON {detail, code} (mdm/errors.py);
// anything else (a proxy's HTML page, no answer at all) gets a plain sentence.

/** `<upload url>/result` from the URL the tus server gave (with or without a trailing slash). */
export function joinUrl(uploadUrl, suffix) {
  return `${uploadUrl.replace(/\/+$/, "")}/${suffix}`;
}

export function parseJson(text) {
  if (typeof text !== "string" || text === "") return null;
  try {
    const value = JSON.parse(text);
    return value && typeof value === "object" ? value : null;
  } catch {
    return null;
  }
}

/** The sentence for a status the server answered without a usable {detail}. */
export function statusSentence(status) {
  if (status === 0) return "The connection to the server was lost.";
  if (status === 401 || status === 403) return "You are not allowed to upload APKs (or your session has ended: sign in again).";
  if (status === 413) return "The file is larger than the server accepts.";
  if (status === 429) return "The server is busy; try again in a moment.";
  if (status >= 500) return `The server could not take the file (error ${status}).`;
  return `The server refused the request (${status}).`;
}

/** {detail, code} from an answer's body, or a sentence for its status. */
export function describeAnswer(status, body) {
  const detail = body && typeof body.detail === "string" && body.detail ? body.detail : statusSentence(status);
  const code = body && typeof body.code === "string" ? body.code : "";
  return { detail, code, status };
}

/** The status of a tus-js-client error (0 when no answer came back). */
export function tusStatus(error) {
  const response = error && error.originalResponse;
  return response ? response.getStatus() : 0;
}

/** {detail, code, status} for a tus-js-client error: the server's own words when it sent some. */
export function describeTusError(error) {
  const response = error && error.originalResponse;
  if (!response) {
    const request = error && error.originalRequest;
    return { detail: request ? statusSentence(0) : String((error && error.message) || error), code: "", status: 0 };
  }
  let body = null;
  try {
    body = parseJson(response.getBody());
  } catch {
    body = null;
  }
  return describeAnswer(response.getStatus(), body);
}

/** Worth another try on its own: no answer, a conflict on the offset, a lock, load, or a 5xx. */
export function isTransient(status) {
  return status === 0 || status === 409 || status === 423 || status === 429 || status >= 500;
}

/** Only http(s) links (a release's url comes from the server, but a link is a link). */
export function safeHref(url, base) {
  try {
    const parsed = new URL(url, base);
    return parsed.protocol === "http:" || parsed.protocol === "https:" ? parsed.href : null;
  } catch {
    return null;
  }
}
