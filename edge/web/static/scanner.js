/* scanner.js: codes from a barcode scanner in keyboard mode (USB or Bluetooth).
 *
 * Such a scanner types the code as keystrokes a few milliseconds apart (10-30 ms) and
 * ends it with Enter. catchScans() listens on the whole page, wherever the focus is, no
 * input box needed: a burst of at least SCAN_MIN keys SCAN_GAP_MS apart on average
 * (one late key, the page busy drawing, does not break it), with no pause of
 * SCAN_PAUSE_MS inside and Enter at its end, is a code. Keys typed into a field (a PIN,
 * a reason, a search box) are the person's, not a scanner's, and are left alone; the
 * Enter that ends a code does not also press the focused button.
 */

const SCAN_GAP_MS = 50; // a scanner types faster than anyone ...
const SCAN_PAUSE_MS = 300; // ... and never pauses this long inside a code
const SCAN_MIN = 4; // shorter bursts are not codes

function typing(target) {
  if (!(target instanceof Element)) return false;
  if (target.isContentEditable) return true;
  if (target.tagName === "TEXTAREA" || target.tagName === "SELECT") return true;
  return (
    target.tagName === "INPUT" &&
    !["button", "checkbox", "radio", "submit", "reset", "file", "range", "color"].includes(target.type)
  );
}

/** Call onCode(code, enterAt) for every scanned code while active() says so; enterAt is
 * the Enter key's event time stamp. */
export function catchScans(active, onCode) {
  let burst = ""; // the keys since the last pause
  let firstKeyAt = 0;
  let lastKeyAt = -Infinity;
  document.addEventListener(
    "keydown",
    (ev) => {
      if (!active() || typing(ev.target) || ev.ctrlKey || ev.altKey || ev.metaKey) {
        burst = "";
        return;
      }
      if (ev.key === "Shift") return; // a scanner holds Shift for capitals and ":"
      const at = ev.timeStamp;
      if (at - lastKeyAt > SCAN_PAUSE_MS) burst = "";
      if (ev.key === "Enter") {
        const code = burst;
        const pace = (lastKeyAt - firstKeyAt) / Math.max(code.length - 1, 1);
        burst = "";
        lastKeyAt = at;
        if (code.length >= SCAN_MIN && pace < SCAN_GAP_MS) {
          ev.preventDefault(); // not a press of the focused button
          ev.stopPropagation();
          onCode(code, at);
        }
        return;
      }
      lastKeyAt = at;
      if (ev.key.length !== 1) {
        burst = "";
        return;
      }
      if (!burst) firstKeyAt = at;
      burst += ev.key;
    },
    true,
  );
}
