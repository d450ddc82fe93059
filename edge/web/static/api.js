/* api.js: the only place the page talks to the station (fetch under /api).
 *
 * api() sends JSON (or a photo Blob as it is), gives up after a timeout, and turns
 * every failure into an ApiError carrying a message in both languages: the station's
 * own error body {error: {code, message, message_en}} when there is one, else ours
 * ("network" when the station did not answer, "http" for a bare status).
 */
import { both } from "./i18n.js";

export class ApiError extends Error {
  constructor(msg, code, status, body) {
    super(msg.en);
    this.msg = msg; // {vi, en}
    this.code = code;
    this.status = status;
    this.body = body || null; // the station's whole answer (a duplicate's "matches")
  }
}

/** method and path ("/lots") of one request; resolves to the parsed JSON body. */
export async function api(method, path, body, timeoutMs) {
  const ctrl = new AbortController();
  const timer = setTimeout(() => ctrl.abort(), timeoutMs || 5000);
  let res;
  const raw = body instanceof Blob; // a photo goes as it is, with its own type
  let headers = {};
  if (raw) headers = { "Content-Type": body.type || "application/octet-stream" };
  else if (body !== undefined) headers = { "Content-Type": "application/json" };
  try {
    res = await fetch("/api" + path, {
      method: method,
      headers: headers,
      body: raw ? body : body === undefined ? undefined : JSON.stringify(body),
      cache: "no-store",
      signal: ctrl.signal,
    });
  } catch (_e) {
    throw new ApiError(both("network_error"), "network", 0);
  } finally {
    clearTimeout(timer);
  }
  let data = null;
  try {
    data = await res.json();
  } catch (_e) {
    data = null;
  }
  if (!res.ok) {
    const err = data && data.error;
    if (res.status === 401 && path !== "/login" && path !== "/me") {
      window.dispatchEvent(new Event("station:signed-out"));
    }
    if (err && err.message) {
      throw new ApiError({ vi: err.message, en: err.message_en || err.message }, err.code, res.status, data);
    }
    throw new ApiError(both("server_error", () => ({ status: res.status })), "http", res.status);
  }
  return data;
}
