/* stream.js: the station's state pushed to the page (GET /api/events, server-sent events).
 *
 * Each "state" event is a GET /api/state body, sent at once when the scale changes and
 * when anything else on the page changes; "heartbeat" comes every 15 s when nothing did.
 * While the stream is up station.js does not poll; while it is down (the station is
 * restarting, Wi-Fi dropped, 20 devices already listen) station.js polls as before and
 * the stream is tried again: by the browser itself after a dropped connection, by us
 * after a refusal (EventSource gives up on a non-200 answer) or a silent stream.
 */
import { applyState, setPushed } from "./station.js";

const SILENT_MS = 40000; // no event for this long (heartbeats come every 15 s): reconnect
const REFUSED_RETRY_MS = 10000; // after a refusal (503 too many streams, 401): try again

let source = null;
let watchdog = null;
let retry = null;

function alive() {
  clearTimeout(watchdog);
  watchdog = setTimeout(() => {
    setPushed(false);
    connect();
  }, SILENT_MS);
}

function connect() {
  clearTimeout(retry);
  if (source) source.close();
  const es = new EventSource("/api/events");
  source = es;
  es.addEventListener("state", (ev) => {
    let s = null;
    try {
      s = JSON.parse(ev.data);
    } catch (_e) {
      return;
    }
    alive();
    setPushed(true);
    applyState(s);
  });
  es.addEventListener("heartbeat", alive);
  es.addEventListener("error", () => {
    if (es !== source) return;
    setPushed(false); // polling until the stream is back
    if (es.readyState === EventSource.CLOSED) {
      clearTimeout(watchdog);
      retry = setTimeout(connect, REFUSED_RETRY_MS);
    }
  });
}

/** Listen to the station (main.js, once); without EventSource the page just polls. */
export function startStream() {
  if (typeof EventSource !== "function") return;
  connect();
}
