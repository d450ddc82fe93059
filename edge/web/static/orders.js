/* orders.js: orders and packing (issue 13), the "Đơn hàng" tab.
 *
 * - The list card: a search box (order id, package id or tracking number), the open or
 *   packed orders (oldest first, a tap opens one), the pick list (what to take from stock
 *   per product and grade, and the stock on hand) and two alerts (role="alert", so the
 *   tab gets its dot): orders the stock cannot cover, tracking numbers running low.
 * - The order card, one order open: goods, expected weight ± tolerance, COD, and
 *   "Đóng gói & In nhãn": the station weighs the parcel with the scale's current stable
 *   reading (the weight in the weighing column; POST /orders/{id}/pack) and the label
 *   prints at once. The result shows at once, large: the tracking number and gross
 *   weight, or the station's refusal (too light, too heavy, cancelled...). A lead may
 *   pack a refused weight anyway with a reason, or void a packed parcel with a reason
 *   (the order opens again); anyone may print its label again (a copy).
 * - A barcode scanner in keyboard mode (USB or Bluetooth) types the slip's code fast and
 *   ends with Enter: while this tab is shown, such a burst anywhere on the page
 *   (scanner.js) opens that order (GET /orders/lookup).
 * The list is fetched at start, again when the tab is shown, every LIST_EVERY_MS while it
 * is (ALERTS_EVERY_MS while it is not: its alerts put a dot on the tab), and after each
 * pack or void. Lot recording in the weighing column is not touched.
 */
import { api, ApiError } from "./api.js";
import { formatDong, formatKg, gradeLabel } from "./format.js";
import { both, lang, t } from "./i18n.js";
import { $, el, live } from "./page.js";
import { catchScans } from "./scanner.js";
import { person } from "./signin.js";

const LIST_EVERY_MS = 10000; // while the tab is shown
const ALERTS_EVERY_MS = 30000; // while it is not: its alerts still mark the tab
const PRINT_WATCH_MS = 700; // how often the card asks about the label just queued
const PRINT_WATCH_TIMES = 40;
const OVERRIDABLE = ["weight_too_light", "weight_too_heavy"];
const SCALE_STATUSES = ["stable", "settling", "unstable", "overload", "underload", "offline"];

const panel = $("panel-orders");
const ui = {
  notice: $("orders-notice"),
  card: $("order-card"),
  back: $("order-back"),
  recipient: $("order-recipient"),
  carrier: $("order-carrier"),
  id: $("order-id"),
  status: $("order-status"),
  lines: $("order-lines"),
  expected: $("order-expected"),
  cod: $("order-cod"),
  short: $("order-short"),
  pack: $("pack-button"),
  packHint: $("pack-hint"),
  result: $("pack-result"),
  override: $("pack-override"),
  reprint: $("parcel-reprint"),
  void: $("parcel-void"),
  next: $("order-next"),
  reasonForm: $("reason-form"),
  reasonLabel: $("reason-label"),
  reasonInput: $("reason-input"),
  reasonProblem: $("reason-problem"),
  reasonConfirm: $("reason-confirm"),
  phone: $("order-phone"),
  address: $("order-address"),
  note: $("order-note"),
  listCard: $("orders-card"),
  searchForm: $("orders-search-form"),
  search: $("orders-search"),
  searchButton: $("orders-search-button"),
  filterOpen: $("orders-filter-open"),
  filterPacked: $("orders-filter-packed"),
  trackingLow: $("tracking-low"),
  shortAlert: $("orders-short"),
  picklist: $("picklist"),
  pickSummary: $("picklist-summary"),
  pickBody: $("picklist-table").tBodies[0],
  list: $("orders-list"),
  empty: $("orders-empty"),
};

let filter = "open"; // which orders the list shows: "open" or "packed"
let orders = []; // GET /api/orders?status=<filter>
let picklist = null; // GET /api/orders/picklist
let current = null; // the order open in the card
let currentVersion = 0; // bumped at each change of it: an answer asked before is stale
let result = null; // what the last action said: {kind: "ok"|"error", msg: {vi, en}, code}
let notice = null; // a lookup that found nothing: {vi, en}
let reasonMode = null; // "override" or "void" while the reason form is open
let busy = false; // a pack, void or reprint is out
let listInFlight = false;
let listAgain = false;
let listShown = ""; // what the list last drew: redrawn only when that changes
let watching = null; // the order whose label is being watched

const enc = encodeURIComponent;

function isLead() {
  return Boolean(person) && person.role === "lead";
}

function shown() {
  return !panel.hidden;
}

// ---------------------------------------------------------------- the list

/** Fetch the list and the pick list again (one round at a time; a call meanwhile asks
 * for one more round right after). */
export async function refreshOrders() {
  if (listInFlight) {
    listAgain = true;
    return;
  }
  listInFlight = true;
  const asked = filter;
  try {
    const [rows, pick] = await Promise.all([
      api("GET", "/orders?status=" + asked),
      api("GET", "/orders/picklist"),
    ]);
    picklist = pick;
    if (asked === filter) orders = rows;
    else listAgain = true; // the filter changed meanwhile: ask again
    if (current === null) renderList(false);
  } catch (_e) {
    /* the connection banner says so; the next round tries again */
  } finally {
    listInFlight = false;
  }
  if (listAgain) {
    listAgain = false;
    refreshOrders();
  }
}

function goods(order) {
  return order.lines.map((x) => x.quantity + " × " + (x.name || x.product)).join(", ");
}

function gramsText(g) {
  return g + " g";
}

function span(cls, text, testid) {
  const s = document.createElement("span");
  if (cls) s.className = cls;
  if (testid) s.setAttribute("data-testid", testid);
  s.textContent = text;
  return s;
}

function orderRow(order) {
  const li = document.createElement("li");
  const b = document.createElement("button");
  b.type = "button";
  b.className = "order-row";
  b.setAttribute("data-testid", "order-row");
  b.dataset.orderId = order.id;
  b.dataset.status = order.status;
  const top = span("order-row-top", "");
  top.append(
    span("order-row-name", order.recipient, "order-row-name"),
    span("order-row-weight", formatKg(order.expected_g), "order-row-weight"),
  );
  const detail = span("order-row-detail", [goods(order), order.carrier, "#" + order.id.slice(-6)].join(" · "));
  b.append(top, detail);
  if (order.parcel) b.append(span("order-row-tracking", order.parcel.tracking, "order-row-tracking"));
  if (order.status === "open" && order.covered === false) {
    const pill = span("pill order-row-short", t("order_short_pill"), "order-row-short");
    b.append(pill);
  }
  b.addEventListener("click", () => openOrder(order));
  li.appendChild(b);
  return li;
}

function keyOf(product, grade) {
  return String(product).normalize("NFC").toLowerCase() + "\u0000" + (grade || "");
}

function productGrade(product, grade) {
  return grade ? product + " · " + gradeLabel(grade) : product;
}

function renderPicklist() {
  const pick = picklist || { lines: [], stock: [], short: [], tracking: [] };
  const packs = pick.lines.reduce((n, x) => n + x.packs, 0);
  const grams = pick.lines.reduce((n, x) => n + x.net_g, 0);
  ui.pickSummary.textContent = pick.lines.length
    ? t("pick_summary", { packs: packs, weight: formatKg(grams) })
    : t("pick_none");
  const stock = new Map(pick.stock.map((s) => [keyOf(s.product, s.grade), s]));
  const body = ui.pickBody;
  body.textContent = "";
  const rows = pick.lines.map((x) => ({ ...x, on_hand_g: (stock.get(keyOf(x.product, x.grade)) || {}).on_hand_g || 0 }));
  const wanted = new Set(rows.map((x) => keyOf(x.product, x.grade)));
  for (const s of pick.stock) {
    if (!wanted.has(keyOf(s.product, s.grade))) rows.push({ ...s, packs: 0, net_g: 0 });
  }
  for (const row of rows) {
    const tr = document.createElement("tr");
    tr.setAttribute("data-testid", "pick-row");
    tr.dataset.short = String(row.net_g > row.on_hand_g);
    const name = document.createElement("th");
    name.scope = "row";
    name.textContent = productGrade(row.product, row.grade);
    const take = document.createElement("td");
    take.setAttribute("data-testid", "pick-take");
    take.textContent = row.packs ? t("pick_take", { packs: row.packs, weight: formatKg(row.net_g) }) : "–";
    const have = document.createElement("td");
    have.setAttribute("data-testid", "pick-stock");
    have.textContent = formatKg(row.on_hand_g);
    tr.append(name, take, have);
    body.appendChild(tr);
  }

  // orders the stock cannot cover: how many, and what is missing
  const shortOrders = new Set(pick.short.map((s) => s.order_id));
  const missing = new Map();
  for (const s of pick.short) {
    const k = keyOf(s.product, s.grade);
    const had = missing.get(k) || { product: s.product, grade: s.grade, g: 0 };
    had.g += s.missing_g;
    missing.set(k, had);
  }
  ui.shortAlert.hidden = shortOrders.size === 0;
  ui.shortAlert.textContent = shortOrders.size
    ? t("orders_short_alert", {
        n: shortOrders.size,
        what: [...missing.values()].map((m) => productGrade(m.product, m.grade) + " " + formatKg(m.g)).join("; "),
      })
    : "";

  const low = pick.tracking.filter((x) => x.low);
  ui.trackingLow.hidden = low.length === 0;
  ui.trackingLow.textContent = low.length
    ? t("tracking_low", { carriers: low.map((x) => t("tracking_left", { carrier: x.carrier, left: x.left })).join("; ") })
    : "";
}

/** The list card, drawn only while it is shown, and only when what it shows changed
 * (200 orders are many rows to draw again every few seconds for nothing). */
function renderList(always = true) {
  if (current !== null) return;
  const key = JSON.stringify([lang, filter, orders, picklist]);
  if (!always && key === listShown) return;
  listShown = key;
  ui.search.placeholder = t("orders_search_placeholder");
  for (const b of [ui.filterOpen, ui.filterPacked]) {
    const on = b.dataset.filter === filter;
    b.setAttribute("aria-pressed", on ? "true" : "false");
    b.classList.toggle("btn-primary", on);
  }
  const count = (n) => (n === null ? "" : " (" + n + ")");
  ui.filterOpen.textContent = t("orders_filter_open") + count(filter === "open" ? orders.length : null);
  ui.filterPacked.textContent = t("orders_filter_packed") + count(filter === "packed" ? orders.length : null);
  renderPicklist();
  ui.list.textContent = "";
  // waiting orders oldest first (packed in that order); packed ones newest first
  const rows = filter === "packed" ? [...orders].reverse() : orders;
  for (const order of rows) ui.list.appendChild(orderRow(order));
  ui.empty.hidden = orders.length > 0;
  ui.empty.textContent = t(filter === "open" ? "orders_empty_open" : "orders_empty_packed");
}

function setFilter(next) {
  if (filter === next) return;
  filter = next;
  orders = [];
  renderList(false);
  refreshOrders();
}

// ---------------------------------------------------------------- one order

function setCurrent(order) {
  current = order;
  currentVersion += 1;
}

function openOrder(order) {
  setCurrent(order);
  result = null;
  notice = null;
  closeReason();
  render();
  panel.scrollTop = 0;
  if (document.activeElement === ui.search) ui.search.blur(); // the next scan comes to the page
  refreshCurrent();
}

/** Open the order a slip or the search box names (order id, package id, tracking). */
async function openCode(code) {
  try {
    const order = await api("GET", "/orders/lookup?code=" + enc(code));
    ui.search.value = "";
    openOrder(order);
  } catch (err) {
    notice = err instanceof ApiError ? err.msg : both("network_error");
    renderNotice();
  }
}

async function refreshCurrent() {
  if (!current) return;
  const id = current.id;
  const version = currentVersion;
  try {
    const order = await api("GET", "/orders/" + enc(id));
    if (current && current.id === id && version === currentVersion) {
      setCurrent(order);
      renderCard();
    }
  } catch (_e) {
    /* kept as it was */
  }
}

function closeOrder() {
  setCurrent(null);
  result = null;
  closeReason();
  render();
  refreshOrders();
}

function scaleStatus() {
  if (!live.connected || !live.station) return "unknown";
  const s = live.station.scale && live.station.scale.status;
  return SCALE_STATUSES.includes(s) ? s : "unknown";
}

/** Why "Đóng gói & In nhãn" cannot be pressed now (a strings key), or null. */
function packBlocker() {
  if (busy) return "pack_busy";
  if (!live.connected || !live.station) return "hint_no_connection";
  const status = scaleStatus();
  if (status !== "stable") return "hint_scale_" + status;
  const w = live.station.scale.weight_g;
  if (typeof w !== "number" || w <= 0) return "pack_put_parcel";
  return null;
}

/** The button, enabled only with a stable weight, and under it what the scale reads
 * against what this order should weigh (the station decides; this only helps). */
export function updatePackButton() {
  if (!current) return;
  const blocker = packBlocker();
  ui.pack.disabled = blocker !== null;
  ui.packHint.dataset.blocker = blocker || "";
  if (blocker) {
    ui.packHint.textContent = t(blocker);
    ui.packHint.dataset.verdict = "";
    return;
  }
  const w = live.station.scale.weight_g;
  const off = w - current.expected_g;
  let verdict = "ok";
  if (off < -current.tolerance_g) verdict = "light";
  else if (off > current.tolerance_g) verdict = "heavy";
  ui.packHint.dataset.verdict = verdict;
  ui.packHint.textContent = t("pack_hint_" + verdict, { weight: formatKg(w), g: Math.abs(off) });
}

const STATUS_KEYS = {
  open: "order_status_open",
  packed: "order_status_packed",
  cancelled: "order_status_cancelled",
  cancelled_after_packing: "order_status_cancelled_after_packing",
};

function printText(status) {
  if (status === "printed") return t("pack_printed");
  if (status === "held") return t("pack_print_held");
  if (status === "failed") return t("pack_print_failed");
  return t("pack_printing");
}

function messageParts(box, msg) {
  const main = document.createElement("p");
  main.className = "pack-message";
  main.setAttribute("data-testid", "pack-message");
  main.textContent = msg[lang] || msg.vi;
  box.appendChild(main);
  if (lang === "en" && msg.vi && msg.vi !== msg.en) {
    const second = document.createElement("p");
    second.className = "pack-second";
    second.lang = "vi";
    second.textContent = msg.vi;
    box.appendChild(second);
  }
}

function renderResult() {
  const box = ui.result;
  box.textContent = "";
  const parcel = current && current.parcel;
  if (result && result.kind === "error") {
    box.hidden = false;
    box.dataset.kind = "error";
    box.dataset.code = result.code || "";
    box.setAttribute("role", "alert");
    messageParts(box, result.msg);
    return;
  }
  if (!parcel && !result) {
    box.hidden = true;
    return;
  }
  box.hidden = false;
  box.dataset.kind = "ok";
  box.dataset.code = "";
  box.setAttribute("role", "status");
  if (parcel) {
    box.append(
      span("pack-done", t(result && result.packed ? "pack_done" : "pack_was_packed"), "pack-done"),
      span("pack-tracking", parcel.tracking, "pack-tracking"),
    );
    const line = document.createElement("p");
    line.className = "pack-line";
    line.append(
      span("pack-gross", t("pack_gross", { weight: formatKg(parcel.gross_g) }), "pack-gross"),
      document.createTextNode(" · "),
      span("pack-print", printText(parcel.print_status), "pack-print"),
    );
    line.lastChild.dataset.status = parcel.print_status || "";
    box.appendChild(line);
  }
  if (result && result.msg) messageParts(box, result.msg);
}

function renderCard() {
  if (!current) return;
  const o = current;
  ui.back.setAttribute("aria-label", t("order_back"));
  ui.back.title = t("order_back");
  ui.recipient.textContent = o.recipient;
  ui.carrier.textContent = o.carrier;
  ui.id.textContent = "#" + o.id;
  ui.status.textContent = t(STATUS_KEYS[o.status] || "order_status_open");
  ui.status.dataset.orderStatus = o.status;
  ui.lines.textContent = "";
  for (const x of o.lines) {
    const li = document.createElement("li");
    li.setAttribute("data-testid", "order-line");
    li.append(
      span("order-line-qty", x.quantity + " ×"),
      document.createTextNode(" "),
      span("order-line-name", x.name || x.product),
      document.createTextNode(" "),
      span("order-line-grade", gradeLabel(x.grade)),
    );
    ui.lines.appendChild(li);
  }
  ui.expected.textContent = t("order_expected", { weight: formatKg(o.expected_g), tol: gramsText(o.tolerance_g) });
  ui.cod.textContent = o.cod_dong ? t("order_cod", { amount: formatDong(o.cod_dong) }) : t("order_prepaid");
  ui.cod.dataset.cod = String(o.cod_dong || 0);
  let warning = null; // why this order is not packed as it is, when it is not
  if (o.status === "cancelled") warning = "order_cancelled_note";
  else if (o.status === "cancelled_after_packing") warning = "order_cancelled_packed_note";
  else if (o.status === "open" && o.covered === false) warning = "order_short";
  ui.short.hidden = warning === null;
  ui.short.textContent = warning ? t(warning) : "";
  ui.short.dataset.warning = warning || "";
  ui.phone.textContent = o.phone;
  ui.address.textContent = [o.address, o.commune, o.district, o.province].filter(Boolean).join(", ");
  ui.note.hidden = !o.buyer_message;
  ui.note.textContent = o.buyer_message ? t("order_buyer_message", { text: o.buyer_message }) : "";

  const open = o.status === "open";
  ui.pack.hidden = !open;
  ui.override.hidden = !(
    open &&
    isLead() &&
    result &&
    result.kind === "error" &&
    OVERRIDABLE.includes(result.code) &&
    reasonMode === null
  );
  ui.reprint.hidden = !o.parcel;
  ui.reprint.disabled = busy;
  ui.void.hidden = !(o.parcel && isLead()) || reasonMode !== null;
  ui.void.disabled = busy;
  ui.next.hidden = open;
  renderResult();
  renderReason();
  updatePackButton();
}

function renderNotice() {
  ui.notice.hidden = !notice;
  ui.notice.textContent = notice ? notice[lang] || notice.vi : "";
}

/** Everything in this tab again (main.js on a language switch). */
export function renderOrders() {
  ui.listCard.hidden = current !== null;
  ui.card.hidden = current === null;
  renderNotice();
  renderList(false);
  renderCard();
}

const render = renderOrders;

// ---------------------------------------------------------------- packing

async function pack(overrideReason) {
  if (busy || !current) return;
  busy = true;
  const id = current.id;
  updatePackButton();
  try {
    const r = await api("POST", "/orders/" + enc(id) + "/pack", { override_reason: overrideReason || null }, 15000);
    if (current && current.id === id) {
      setCurrent({ ...r.order, parcel: { ...(r.order.parcel || {}), ...r.parcel } });
      result = { kind: "ok", packed: true, msg: null };
    }
    closeReason();
    watchPrint(id);
  } catch (err) {
    if (current && current.id === id) {
      if (err instanceof ApiError && err.code === "network") {
        result = { kind: "error", code: "network", msg: both("pack_unknown") };
      } else {
        result = { kind: "error", code: err.code, msg: err instanceof ApiError ? err.msg : both("network_error") };
      }
    }
    refreshCurrent();
  } finally {
    busy = false;
    render();
    if (typeof ui.result.scrollIntoView === "function") ui.result.scrollIntoView({ block: "nearest" });
    refreshOrders();
  }
}

/** Follow the label just queued until it printed (or stopped): "Đang in nhãn" to "Đã in nhãn". */
async function watchPrint(id) {
  watching = id;
  for (let i = 0; i < PRINT_WATCH_TIMES && watching === id; i++) {
    await new Promise((resolve) => setTimeout(resolve, PRINT_WATCH_MS));
    if (!current || current.id !== id || !current.parcel) return;
    if (!["queued", "sending"].includes(current.parcel.print_status)) return;
    await refreshCurrent();
  }
}

async function voidParcel(reason) {
  if (busy || !current || !current.parcel) return;
  busy = true;
  const id = current.id;
  const tracking = current.parcel.tracking;
  renderCard();
  try {
    const r = await api("POST", "/parcels/" + enc(current.parcel.id) + "/void", { reason: reason });
    if (current && current.id === id) {
      setCurrent(r.order);
      result = { kind: "ok", msg: both("void_done", () => ({ tracking: tracking })) };
    }
    closeReason();
  } catch (err) {
    result = { kind: "error", code: err.code, msg: err instanceof ApiError ? err.msg : both("network_error") };
  } finally {
    busy = false;
    render();
    refreshOrders();
  }
}

async function reprint() {
  if (busy || !current || !current.parcel) return;
  busy = true;
  const id = current.id;
  const tracking = current.parcel.tracking;
  renderCard();
  try {
    const r = await api("POST", "/parcels/" + enc(current.parcel.id) + "/reprint", {});
    result = { kind: "ok", msg: both(r.copy ? "reprint_copy" : "reprint_again", () => ({ tracking: tracking })) };
  } catch (err) {
    result = { kind: "error", code: err.code, msg: err instanceof ApiError ? err.msg : both("network_error") };
  } finally {
    busy = false;
    await refreshCurrent();
    render();
    if (current && current.id === id) watchPrint(id);
  }
}

async function nextOrder() {
  try {
    const open = await api("GET", "/orders?status=open");
    const next = open.find((o) => !current || o.id !== current.id);
    if (next) openOrder(next);
    else closeOrder();
  } catch (_e) {
    closeOrder();
  }
}

// ---------------------------------------------------------------- the reason (lead)

function openReason(mode) {
  reasonMode = mode;
  ui.reasonInput.value = "";
  ui.reasonProblem.hidden = true;
  renderCard();
  ui.reasonInput.focus();
}

function closeReason() {
  reasonMode = null;
  ui.reasonForm.hidden = true;
}

function renderReason() {
  ui.reasonForm.hidden = reasonMode === null;
  if (reasonMode === null) return;
  ui.reasonForm.dataset.mode = reasonMode;
  ui.reasonLabel.textContent = t(reasonMode === "override" ? "override_reason" : "void_reason");
  ui.reasonInput.placeholder = t(reasonMode === "override" ? "override_reason_hint" : "void_reason_hint");
  ui.reasonConfirm.textContent = t(reasonMode === "override" ? "override_confirm" : "void_confirm");
  ui.reasonConfirm.disabled = busy;
  ui.reasonProblem.textContent = t("reason_required");
}

function submitReason(ev) {
  ev.preventDefault();
  const reason = ui.reasonInput.value.trim();
  if (!reason) {
    ui.reasonProblem.hidden = false;
    return;
  }
  if (reasonMode === "override") pack(reason);
  else if (reasonMode === "void") voidParcel(reason);
}

// ---------------------------------------------------------------- wiring

/** Wire the tab (main.js, once, before the tabs): the list loads when it is shown. */
export function wireOrders() {
  ui.back.addEventListener("click", closeOrder);
  ui.pack.addEventListener("click", () => pack(null));
  ui.override.addEventListener("click", () => openReason("override"));
  ui.void.addEventListener("click", () => openReason("void"));
  ui.reprint.addEventListener("click", reprint);
  ui.next.addEventListener("click", nextOrder);
  ui.reasonForm.addEventListener("submit", submitReason);
  $("reason-cancel").addEventListener("click", () => {
    closeReason();
    renderCard();
  });
  ui.searchForm.addEventListener("submit", (ev) => {
    ev.preventDefault();
    const code = ui.search.value.trim();
    if (code) openCode(code);
  });
  ui.filterOpen.addEventListener("click", () => setFilter("open"));
  ui.filterPacked.addEventListener("click", () => setFilter("packed"));
  catchScans(shown, (code) => openCode(code));
  window.addEventListener("station:tab", (ev) => {
    if (ev.detail !== "orders") return;
    refreshOrders();
    refreshCurrent();
  });
  // the pack button follows the weighing column's scale (station.js draws it)
  const follow = new MutationObserver(updatePackButton);
  follow.observe(el.weight, { childList: true, subtree: true, characterData: true });
  follow.observe(el.scaleStatus, { attributes: true, attributeFilter: ["data-status"] });
  follow.observe(el.banner, { attributes: true, attributeFilter: ["hidden"] });
  let last = 0;
  setInterval(() => {
    const every = shown() ? LIST_EVERY_MS : ALERTS_EVERY_MS;
    if (document.hidden || Date.now() - last < every - 500) return;
    last = Date.now();
    refreshOrders();
    if (shown()) refreshCurrent();
  }, LIST_EVERY_MS);
  render();
  refreshOrders(); // the alerts (stock short, tracking numbers low) mark the tab at once
}
