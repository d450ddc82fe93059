/* Collection point station page: vanilla JS, no build, no network beyond the station.
 *
 * Polls GET /api/state every 500 ms (weight, scale, printer, outbox, link) and
 * GET /api/lots every few seconds. After "Ghi & In" the photo step opens: take a
 * photo with the station camera or upload one from a phone, see the proposed grade
 * and why, and confirm or change it. Every text the staff read lives in strings.js,
 * Vietnamese first; the "English" button switches the page. Messages from the
 * API come in both languages and are shown in the chosen one.
 */
"use strict";

(function () {
  const STATE_EVERY_MS = 500;
  const STATE_HIDDEN_EVERY_MS = 5000;
  const LOTS_EVERY_MS = 3000;
  const CATALOG_EVERY_MS = 20000;

  const STRINGS = window.STATION_STRINGS;

  const SCALE_STATUSES = ["stable", "settling", "unstable", "overload", "underload", "offline"];

  // ---------------------------------------------------------------- language

  let lang = readLang();

  function readLang() {
    try {
      return window.localStorage.getItem("station.lang") === "en" ? "en" : "vi";
    } catch (_e) {
      return "vi";
    }
  }

  function saveLang() {
    try {
      window.localStorage.setItem("station.lang", lang);
    } catch (_e) {
      /* private mode: the choice lasts until reload */
    }
  }

  function fill(template, vars) {
    return template.replace(/\{(\w+)\}/g, (m, k) => (vars && k in vars ? String(vars[k]) : m));
  }

  function t(key, vars, inLang) {
    const table = STRINGS[inLang || lang];
    const text = key in table ? table[key] : STRINGS.vi[key] || key;
    return fill(text, vars);
  }

  /** Both languages of one message, for texts that must survive a language switch. */
  function both(key, varsFor) {
    return {
      vi: t(key, varsFor ? varsFor("vi") : undefined, "vi"),
      en: t(key, varsFor ? varsFor("en") : undefined, "en"),
    };
  }

  // ---------------------------------------------------------------- formatting

  function groupDigits(digits, sep) {
    return digits.replace(/\B(?=(\d{3})+(?!\d))/g, sep);
  }

  /** Integer grams as kg with three decimals: "12,345 kg" in Vietnamese, "12.345 kg" in English. */
  function formatKg(grams, inLang) {
    if (typeof grams !== "number" || !Number.isFinite(grams)) return "– kg";
    const l = inLang || lang;
    const g = Math.round(grams);
    const abs = Math.abs(g);
    const whole = groupDigits(String(Math.floor(abs / 1000)), l === "vi" ? "." : ",");
    const frac = String(abs % 1000).padStart(3, "0");
    return (g < 0 ? "−" : "") + whole + (l === "vi" ? "," : ".") + frac + " kg";
  }

  function formatDong(dong) {
    return groupDigits(String(Math.round(dong)), ".") + " đ";
  }

  let siteTimeZone = null;

  function formatTime(iso) {
    const d = new Date(iso);
    if (Number.isNaN(d.getTime())) return "–";
    const opts = { hour: "2-digit", minute: "2-digit", hour12: false };
    if (siteTimeZone) opts.timeZone = siteTimeZone;
    try {
      return new Intl.DateTimeFormat("vi-VN", opts).format(d);
    } catch (_e) {
      return String(d.getHours()).padStart(2, "0") + ":" + String(d.getMinutes()).padStart(2, "0");
    }
  }

  // ---------------------------------------------------------------- API

  class ApiError extends Error {
    constructor(msg, code, status) {
      super(msg.en);
      this.msg = msg; // {vi, en}
      this.code = code;
      this.status = status;
    }
  }

  async function api(method, path, body, timeoutMs) {
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
      if (err && err.message) {
        throw new ApiError({ vi: err.message, en: err.message_en || err.message }, err.code, res.status);
      }
      throw new ApiError(both("server_error", () => ({ status: res.status })), "http", res.status);
    }
    return data;
  }

  // ---------------------------------------------------------------- elements

  const $ = (id) => document.querySelector('[data-testid="' + id + '"]');
  const el = {
    site: $("site-name"),
    langToggle: $("lang-toggle"),
    banner: $("connection-banner"),
    weight: $("weight"),
    weightLabel: document.querySelector(".weight-label"),
    scaleStatus: $("scale-status"),
    scaleStatusText: document.querySelector(".scale-status-text"),
    scaleDetail: $("scale-detail"),
    tareInfo: $("tare-info"),
    tareButton: $("tare-button"),
    tareClear: $("tare-clear-button"),
    zeroButton: $("zero-button"),
    producerSelect: $("producer-select"),
    productSelect: $("product-select"),
    producerToggle: $("producer-add-toggle"),
    productToggle: $("product-add-toggle"),
    producerForm: $("producer-form"),
    productForm: $("product-form"),
    record: $("record-button"),
    recordHint: $("record-hint"),
    message: $("message"),
    outboxPending: $("outbox-pending"),
    linkStatus: $("link-status"),
    printerStatus: $("printer-status"),
    printerQueued: $("printer-queued"),
    printerError: $("printer-error"),
    held: $("held-jobs"),
    heldList: $("held-list"),
    sim: $("simulator"),
    simForm: $("sim-form"),
    simWeight: $("sim-weight"),
    lotsBody: $("lots-body"),
    lotsEmpty: $("lots-empty"),
    lotsCount: $("lots-count"),
    productGrading: $("product-grading"),
    cameraStatus: $("camera-status"),
    photosUsage: $("photos-usage"),
    photosOver: $("photos-over"),
    photoCard: $("photo-card"),
    photoLot: $("photo-lot"),
    photoClose: $("photo-close"),
    captureButton: $("capture-button"),
    uploadButton: $("upload-button"),
    uploadInput: $("upload-input"),
    cameraProblem: $("camera-problem"),
    photoBusy: $("photo-busy"),
    photoResult: $("photo-result"),
    photoLink: $("photo-link"),
    photoThumb: $("photo-thumb"),
    proposalGrade: $("proposal-grade"),
    reasons: $("reasons"),
    photoNote: $("photo-note"),
    graderName: $("grader-name"),
    gradeButtons: $("grade-buttons"),
    gradeConfirmed: $("grade-confirmed"),
  };

  // ---------------------------------------------------------------- page state

  let station = null; // last GET /api/state
  let connected = false;
  let busy = false;
  let message = null; // {kind, msg: {vi, en}}
  let producers = [];
  let products = [];
  let lots = [];
  let gradingKeys = [];
  let heldJobs = [];
  let lastHeldKey = "";

  // ---------------------------------------------------------------- messages

  function showMessage(kind, msg) {
    message = { kind: kind, msg: msg };
    delete el.message.dataset.lotId;
    delete el.message.dataset.seq;
    renderMessage();
    if (typeof el.message.scrollIntoView === "function") {
      el.message.scrollIntoView({ block: "nearest" });
    }
  }

  function renderMessage() {
    const box = el.message;
    box.textContent = "";
    if (!message) {
      box.hidden = true;
      return;
    }
    box.hidden = false;
    box.dataset.kind = message.kind;
    box.setAttribute("role", message.kind === "error" ? "alert" : "status");
    const main = document.createElement("p");
    main.className = "message-main";
    main.textContent = message.msg[lang] || message.msg.vi;
    box.appendChild(main);
    if (lang === "en" && message.msg.vi && message.msg.vi !== message.msg.en) {
      const second = document.createElement("p");
      second.className = "message-second";
      second.lang = "vi";
      second.textContent = message.msg.vi;
      box.appendChild(second);
    }
  }

  function showError(err) {
    if (err instanceof ApiError) showMessage("error", err.msg);
    else showMessage("error", both("network_error"));
  }

  // ---------------------------------------------------------------- texts

  function applyLanguage() {
    document.documentElement.lang = lang;
    document.title = t("title");
    document.querySelectorAll("[data-i18n]").forEach((node) => {
      node.textContent = t(node.dataset.i18n);
    });
    el.langToggle.textContent = t("lang_button");
    el.langToggle.lang = lang === "vi" ? "en" : "vi";
    for (const [toggle, form] of [
      [el.producerToggle, el.producerForm],
      [el.productToggle, el.productForm],
    ]) {
      toggle.textContent = form.hidden ? t("add") : t("close_form");
    }
    renderAll();
  }

  function renderAll() {
    renderState();
    renderOptions();
    renderLots();
    renderHeld();
    renderMessage();
    renderPhoto();
  }

  // ---------------------------------------------------------------- state

  function scaleStatus() {
    if (!connected || !station) return "unknown";
    const s = station.scale && station.scale.status;
    return SCALE_STATUSES.includes(s) ? s : "unknown";
  }

  function renderState() {
    el.banner.hidden = connected || !polled;
    if (!station) {
      updateRecordButton();
      return;
    }
    el.site.textContent = station.site ? station.site.name : "";
    if (station.site && station.site.timezone) siteTimeZone = station.site.timezone;

    if (!connected) {
      // Nothing on the page is current any more: say so rather than show old values.
      el.scaleStatus.dataset.status = "unknown";
      el.scaleStatusText.textContent = t("status_nolink");
      renderWeight(null);
      el.weight.dataset.status = "unknown";
      el.scaleDetail.hidden = true;
      renderTare(null, "unknown");
      for (const node of [el.outboxPending, el.linkStatus, el.printerStatus]) {
        node.textContent = "–";
        node.dataset.status = "unknown";
      }
      el.printerQueued.textContent = "";
      el.printerError.hidden = true;
      updateRecordButton();
      return;
    }
    const status = scaleStatus();
    const sc = station.scale || {};
    el.scaleStatus.dataset.status = status;
    el.scaleStatusText.textContent = t("status_" + status);
    el.weight.dataset.status = status;
    renderWeight(status === "offline" || status === "unknown" ? null : sc.weight_g);
    el.weightLabel.textContent = t(sc.net ? "weight_label_net" : "weight_label");
    const detail = status !== "stable" && sc.error ? String(sc.error) : "";
    el.scaleDetail.hidden = !detail;
    el.scaleDetail.textContent = detail;
    renderTare(sc, status);

    el.sim.hidden = !sc.simulated;

    const outbox = station.outbox || {};
    el.outboxPending.textContent = typeof outbox.pending === "number" ? String(outbox.pending) : "–";
    el.outboxPending.dataset.pending = String(outbox.pending || 0);

    const link = station.link || "unknown";
    el.linkStatus.dataset.status = link;
    el.linkStatus.textContent = ["disabled", "connecting", "online", "offline"].includes(link)
      ? t("link_" + link)
      : String(link);

    const printer = station.printer || {};
    const pstatus = printer.status || "unknown";
    el.printerStatus.dataset.status = pstatus;
    el.printerStatus.textContent = ["ready", "offline", "paper_out", "cover_open", "error"].includes(pstatus)
      ? t("printer_" + pstatus)
      : String(pstatus);
    const jobs = printer.jobs || {};
    const waiting = (jobs.queued || 0) + (jobs.sending || 0);
    const parts = [waiting ? t("jobs_waiting", { n: waiting }) : t("jobs_none")];
    if (jobs.held) parts.push(t("jobs_held", { n: jobs.held }));
    if (jobs.failed) parts.push(t("jobs_failed", { n: jobs.failed }));
    el.printerQueued.textContent = parts.join(" · ");
    el.printerQueued.dataset.queued = String(waiting);
    const perror = (lang === "en" && printer.error_en) || printer.error;
    el.printerError.hidden = !perror || pstatus === "ready";
    el.printerError.textContent = perror ? String(perror) : "";

    renderCamera(station.camera);
    updateRecordButton();
  }

  /** What is subtracted (software or on the scale) and which tare/zero buttons apply. */
  function renderTare(sc, status) {
    const info = el.tareInfo;
    let text = "";
    if (sc && sc.tare_source === "software") {
      text = t("tare_software", { weight: formatKg(sc.tare_g) });
    } else if (sc && sc.tare_source === "scale") {
      text = typeof sc.tare_g === "number" ? t("tare_scale", { weight: formatKg(sc.tare_g) }) : t("tare_scale_unknown");
    }
    info.hidden = !text;
    info.textContent = text;
    info.dataset.source = (sc && sc.tare_source) || "";
    const live = Boolean(sc) && status !== "offline" && status !== "unknown";
    const software = !sc || sc.tare_mode !== "scale";
    el.tareButton.disabled = tareBusy || !live || (software && status !== "stable");
    el.tareButton.dataset.mode = sc ? sc.tare_mode || "" : "";
    el.tareClear.hidden = !(sc && sc.tare_source === "software");
    el.tareClear.disabled = tareBusy;
    el.zeroButton.hidden = !(sc && sc.can_zero);
    el.zeroButton.disabled = tareBusy || !live;
  }

  let tareBusy = false;

  async function scaleCommand(path, done) {
    if (tareBusy) return;
    tareBusy = true;
    renderState();
    try {
      const res = await api("POST", path, undefined, 5000);
      showMessage("ok", done(res));
    } catch (err) {
      showError(err);
    } finally {
      tareBusy = false;
      pollState();
    }
  }

  function wireTare() {
    el.tareButton.addEventListener("click", () =>
      scaleCommand("/scale/tare", (res) =>
        res.tare_source === "software"
          ? both("tare_done_software", (l) => ({ weight: formatKg(res.scale.tare_g, l) }))
          : both("tare_done_scale"),
      ),
    );
    el.tareClear.addEventListener("click", () => scaleCommand("/scale/tare/clear", () => both("tare_cleared")));
    el.zeroButton.addEventListener("click", () => scaleCommand("/scale/zero", () => both("zero_done")));
  }

  let shownWeight = "";
  let shownWidth = 0;
  let weightGrams = null;

  /** Big digits, "kg" smaller; the font shrinks rather than ever cut a digit off. */
  function renderWeight(grams) {
    weightGrams = grams;
    const text = formatKg(grams);
    const box = el.weight;
    if (text !== shownWeight) {
      shownWeight = text;
      const number = document.createElement("span");
      number.className = "digits";
      number.textContent = text.slice(0, -3);
      const unit = document.createElement("span");
      unit.className = "unit-kg";
      unit.textContent = "kg";
      box.replaceChildren(number, document.createTextNode(" "), unit);
      shownWidth = -1;
    }
    if (box.clientWidth !== shownWidth) {
      shownWidth = box.clientWidth;
      box.style.fontSize = "";
      if (box.scrollWidth > box.clientWidth && box.clientWidth > 0) {
        const size = parseFloat(window.getComputedStyle(box).fontSize);
        box.style.fontSize = Math.floor((size * box.clientWidth) / box.scrollWidth) + "px";
      }
    }
  }

  function recordBlocker() {
    if (busy) return "hint_busy";
    if (!connected || !station) return "hint_no_connection";
    if (!el.producerSelect.value) return "hint_choose_producer";
    if (!el.productSelect.value) return "hint_choose_product";
    const status = scaleStatus();
    if (status !== "stable") return "hint_scale_" + status;
    const w = station.scale.weight_g;
    if (typeof w !== "number" || w <= 0) return "hint_put_weight";
    return null;
  }

  function updateRecordButton() {
    const blocker = recordBlocker();
    el.record.disabled = blocker !== null;
    el.recordHint.textContent = t(blocker || "hint_ready");
    el.recordHint.dataset.blocker = blocker || "";
  }

  let stateTimer = null;
  let stateInFlight = false;
  let stateAgain = false;
  let polled = false;

  /** One polling loop: a call while a request is out asks for another round right after it. */
  async function pollState() {
    if (stateInFlight) {
      stateAgain = true;
      return;
    }
    stateInFlight = true;
    clearTimeout(stateTimer);
    try {
      const s = await api("GET", "/state", undefined, 4000);
      const before = station;
      station = s;
      connected = true;
      if (changedCounts(before, s)) refreshLots();
      const jobs = (s.printer && s.printer.jobs) || {};
      if (jobs.held || heldJobs.length) {
        const key = JSON.stringify(jobs);
        if (key !== lastHeldKey) {
          lastHeldKey = key;
          refreshHeld();
        }
      }
    } catch (_e) {
      connected = false;
    } finally {
      stateInFlight = false;
      polled = true;
    }
    renderState();
    const delay = stateAgain ? 0 : document.hidden ? STATE_HIDDEN_EVERY_MS : STATE_EVERY_MS;
    stateAgain = false;
    stateTimer = setTimeout(pollState, delay);
  }

  /** Print and sync progress show in the lots list: reload it when the counts move. */
  function changedCounts(a, b) {
    if (!a) return false;
    return (
      JSON.stringify([a.outbox && a.outbox.pending, a.printer && a.printer.jobs]) !==
      JSON.stringify([b.outbox && b.outbox.pending, b.printer && b.printer.jobs])
    );
  }

  // ---------------------------------------------------------------- farmers and products

  function byName(a, b) {
    return String(a.name).localeCompare(String(b.name), "vi");
  }

  function fillSelect(select, rows, placeholderKey, labelOf) {
    const chosen = select.value;
    select.textContent = "";
    const first = document.createElement("option");
    first.value = "";
    first.textContent = t(placeholderKey);
    select.appendChild(first);
    for (const row of rows) {
      const opt = document.createElement("option");
      opt.value = row.id;
      opt.textContent = labelOf(row);
      select.appendChild(opt);
    }
    select.value = rows.some((r) => r.id === chosen) ? chosen : "";
  }

  function producerLabel(p) {
    return p.village ? p.name + " · " + p.village : p.name;
  }

  function productLabel(p) {
    return typeof p.unit_price_dong === "number" ? p.name + " · " + formatDong(p.unit_price_dong) : p.name;
  }

  function gradingLabel(key) {
    const text = t("grading_" + key);
    return text === "grading_" + key ? key : text + " (" + key + ")";
  }

  function renderOptions() {
    fillSelect(el.producerSelect, producers, "choose_producer", producerLabel);
    fillSelect(el.productSelect, products, "choose_product", productLabel);
    const keys = gradingKeys.map((k) => ({ id: k, name: k }));
    fillSelect(el.productGrading, keys, "grading_none", (k) => gradingLabel(k.id));
    updateRecordButton();
  }

  async function refreshCatalog() {
    try {
      const [ps, qs, gk] = await Promise.all([
        api("GET", "/producers"),
        api("GET", "/products"),
        api("GET", "/grading"),
      ]);
      producers = ps.slice().sort(byName);
      products = qs.slice().sort(byName);
      gradingKeys = gk.keys || [];
      renderOptions();
    } catch (_e) {
      /* the connection banner tells the staff; try again on the next round */
    }
  }

  function setFormOpen(toggle, form, open) {
    form.hidden = !open;
    toggle.setAttribute("aria-expanded", String(open));
    toggle.textContent = open ? t("close_form") : t("add");
    if (open) {
      const first = form.querySelector("input");
      if (first) first.focus();
    } else {
      form.reset();
    }
  }

  function wireAddForm(toggle, form, save) {
    toggle.addEventListener("click", () => setFormOpen(toggle, form, form.hidden));
    form.querySelector("[data-cancel]").addEventListener("click", () => setFormOpen(toggle, form, false));
    form.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      const submit = form.querySelector('button[type="submit"]');
      submit.disabled = true;
      try {
        if (await save(form)) setFormOpen(toggle, form, false);
      } finally {
        submit.disabled = false;
      }
    });
  }

  function trimmed(form, name) {
    const v = form.elements[name].value.trim();
    return v === "" ? null : v;
  }

  async function saveProducer(form) {
    const name = trimmed(form, "name");
    if (!name) {
      showMessage("error", both("name_required"));
      return false;
    }
    try {
      const row = await api("POST", "/producers", {
        name: name,
        phone: trimmed(form, "phone"),
        village: trimmed(form, "village"),
      });
      await refreshCatalog();
      el.producerSelect.value = row.id;
      updateRecordButton();
      showMessage("ok", both("producer_added", () => ({ name: row.name })));
      return true;
    } catch (err) {
      showError(err);
      return false;
    }
  }

  async function saveProduct(form) {
    const name = trimmed(form, "name");
    if (!name) {
      showMessage("error", both("name_required"));
      return false;
    }
    const priceText = trimmed(form, "price");
    let price = null;
    if (priceText !== null) {
      price = Number(priceText.replace(/[.\s]/g, ""));
      if (!Number.isInteger(price) || price < 0) {
        showMessage("error", both("price_invalid"));
        return false;
      }
    }
    try {
      const row = await api("POST", "/products", {
        name: name,
        unit_price_dong: price,
        grading: form.elements.grading.value || null,
      });
      await refreshCatalog();
      el.productSelect.value = row.id;
      updateRecordButton();
      showMessage("ok", both("product_added", () => ({ name: row.name })));
      return true;
    } catch (err) {
      showError(err);
      return false;
    }
  }

  // ---------------------------------------------------------------- recording

  async function recordLot() {
    // The button is the client's guard; the station decides (it refuses an
    // unstable or offline scale with a message we show as it comes).
    if (busy) return;
    busy = true;
    updateRecordButton();
    try {
      const lot = await api(
        "POST",
        "/lots",
        { producer_id: el.producerSelect.value, product_id: el.productSelect.value },
        15000,
      );
      showMessage(
        "ok",
        both("recorded", (l) => ({
          seq: lot.seq,
          time: formatTime(lot.recorded_at),
          weight: formatKg(lot.net_g, l),
          producer: lot.producer_name,
          product: lot.product_name,
        })),
      );
      el.message.dataset.lotId = lot.id;
      el.message.dataset.seq = String(lot.seq);
      openPhoto(lot.id);
    } catch (err) {
      if (err instanceof ApiError && err.code === "network") {
        showMessage("error", both("record_unknown"));
      } else {
        showError(err);
      }
    } finally {
      busy = false;
      updateRecordButton();
      refreshLots();
      pollState();
    }
  }

  // ---------------------------------------------------------------- today's lots

  function pill(kind, status, text, testid) {
    const span = document.createElement("span");
    span.setAttribute("data-testid", testid);
    span.className = "pill";
    span.dataset.kind = kind;
    span.dataset.status = status || "none";
    span.textContent = text;
    return span;
  }

  function cell(tr, cls, labelKey, content) {
    const td = document.createElement("td");
    td.className = cls;
    td.dataset.label = t(labelKey);
    if (content instanceof Node) td.appendChild(content);
    else td.textContent = content;
    tr.appendChild(td);
    return td;
  }

  function renderLots() {
    const body = el.lotsBody;
    body.textContent = "";
    for (const lot of lots) {
      const tr = document.createElement("tr");
      tr.setAttribute("data-testid", "lot-row");
      tr.dataset.lotId = lot.id;
      tr.dataset.seq = String(lot.seq);
      const top = cell(tr, "c-top", "col_lot", "");
      const meta = document.createElement("span");
      meta.className = "meta";
      meta.textContent = formatTime(lot.recorded_at) + " · #" + lot.seq;
      const ps = lot.print_status;
      const ss = lot.sync_status;
      const pKnown = ["queued", "sending", "printed", "held", "failed"].includes(ps);
      const sKnown = ["pending", "sent", "confirmed"].includes(ss);
      top.append(
        meta,
        pill("print", ps, pKnown ? t("print_" + ps) : ps || "–", "lot-print"),
        pill("sync", ss, sKnown ? t("sync_" + ss) : ss || "–", "lot-sync"),
      );
      if (lot.grade || lot.proposed_grade) {
        const confirmed = Boolean(lot.grade);
        const text = confirmed
          ? t("lot_grade", { grade: gradeLabel(lot.grade) })
          : t("lot_proposed", { grade: gradeLabel(lot.proposed_grade) });
        top.append(pill("grade", confirmed ? "confirmed" : "proposed", text, "lot-grade"));
      }
      const open = document.createElement("button");
      open.type = "button";
      open.className = "btn lot-photo";
      open.setAttribute("data-testid", "lot-photo-button");
      open.textContent = t("photo_open");
      open.addEventListener("click", () => openPhoto(lot.id));
      top.append(open);
      cell(tr, "c-producer", "col_producer", lot.producer_name).setAttribute("data-testid", "lot-producer");
      cell(tr, "c-product", "col_product", lot.product_name).setAttribute("data-testid", "lot-product");
      cell(tr, "c-weight", "col_weight", formatKg(lot.net_g)).setAttribute("data-testid", "lot-weight");
      body.appendChild(tr);
    }
    el.lotsEmpty.hidden = lots.length > 0;
    el.lotsCount.textContent = lots.length ? "(" + lots.length + ")" : "";
  }

  let lotsInFlight = false;

  async function refreshLots() {
    if (lotsInFlight) return;
    lotsInFlight = true;
    try {
      const rows = await api("GET", "/lots");
      rows.sort((a, b) => b.seq - a.seq);
      const changed = JSON.stringify(rows) !== JSON.stringify(lots);
      lots = rows;
      if (changed) {
        renderLots();
        renderHeld();
      }
    } catch (_e) {
      /* shown by the connection banner */
    } finally {
      lotsInFlight = false;
    }
  }

  // ---------------------------------------------------------------- held print jobs

  async function refreshHeld() {
    try {
      const jobs = await api("GET", "/print-jobs");
      heldJobs = jobs.filter((j) => j.status === "held");
      renderHeld();
    } catch (_e) {
      /* next round */
    }
  }

  function renderHeld() {
    el.heldList.textContent = "";
    el.held.hidden = heldJobs.length === 0;
    for (const job of heldJobs) {
      const lot = lots.find((l) => l.id === job.record_id);
      const li = document.createElement("li");
      li.setAttribute("data-testid", "held-job");
      li.dataset.jobId = job.id;
      const text = document.createElement("span");
      text.className = "held-text";
      text.textContent = lot
        ? [t("lot_short", { seq: lot.seq }), lot.producer_name, lot.product_name, formatKg(lot.net_g)].join(" · ")
        : t("label_short", { id: String(job.record_id).slice(-6) });
      const btn = document.createElement("button");
      btn.type = "button";
      btn.className = "btn btn-primary";
      btn.setAttribute("data-testid", "reprint-button");
      btn.textContent = t("reprint");
      btn.addEventListener("click", () => reprint(job.id, btn));
      li.append(text, btn);
      el.heldList.appendChild(li);
    }
  }

  async function reprint(jobId, btn) {
    btn.disabled = true;
    try {
      await api("POST", "/print-jobs/" + encodeURIComponent(jobId) + "/reprint", {
        reason: t("reprint_reason", undefined, "vi") + " / staff confirmed no label after an interrupted print",
        actor: "staff",
      });
      heldJobs = heldJobs.filter((j) => j.id !== jobId);
      renderHeld();
      showMessage("ok", both("reprint_ok"));
    } catch (err) {
      btn.disabled = false;
      showError(err);
    }
    refreshHeld();
    refreshLots();
  }


  // ---------------------------------------------------------------- photo and grade

  let photoView = null; // GET /api/lots/{id}/photos: lot, grades, photo, proposal
  let photoBusy = false;
  let photoNote = null; // {kind, msg: {vi, en}} about the last photo or confirmation
  let cameraState = null;

  function gradeLabel(g) {
    return g === "reject" ? t("grade_reject") : t("grade_name", { grade: g });
  }

  function renderCamera(cam) {
    cameraState = cam || null;
    const status = (cam && cam.status) || "unknown";
    el.cameraStatus.dataset.status = status;
    const known = ["ok", "ready", "no_device", "error", "none"].includes(status);
    el.cameraStatus.textContent = known ? t("camera_" + status) : "–";
    const photos = cam && cam.photos;
    const mb = (b) => (b / 1048576).toFixed(b < 10485760 ? 1 : 0);
    el.photosUsage.textContent = photos
      ? t("photos_usage", { used: mb(photos.total_bytes), limit: mb(photos.limit_bytes) })
      : "";
    el.photosOver.hidden = !(photos && photos.over_limit);
    el.photosOver.textContent =
      photos && photos.over_limit
        ? t("photos_over", { used: mb(photos.total_bytes), limit: mb(photos.limit_bytes) })
        : "";
    renderPhotoButtons();
  }

  function renderPhotoButtons() {
    const cam = cameraState;
    const none = cam && cam.status === "none";
    el.captureButton.hidden = Boolean(none);
    el.captureButton.disabled = photoBusy || !connected;
    el.uploadButton.classList.toggle("is-disabled", photoBusy);
    el.uploadInput.disabled = photoBusy;
    el.photoBusy.hidden = !photoBusy;
    const problem = cam && (cam.status === "no_device" || cam.status === "error");
    const text = problem ? (lang === "en" && cam.error_en) || cam.error : "";
    el.cameraProblem.hidden = !text;
    el.cameraProblem.textContent = text || "";
  }

  async function openPhoto(lotId) {
    try {
      photoView = await api("GET", "/lots/" + encodeURIComponent(lotId) + "/photos");
      photoNote = null;
      renderPhoto();
      if (typeof el.photoCard.scrollIntoView === "function") {
        el.photoCard.scrollIntoView({ block: "nearest" });
      }
    } catch (err) {
      showError(err);
    }
  }

  /** The lot's proposal: its latest graded photo's grade (a later declined photo keeps it). */
  function proposalOf(view) {
    const g = view && view.grade;
    if (!g || !g.proposed_grade) return null;
    const source = view.photos.find((p) => p.id === g.photo_id);
    const result = source && source.grading;
    return { grade: g.proposed_grade, confidence: g.confidence, reasons: (result && result.reasons) || [] };
  }

  function renderPhoto() {
    const view = photoView;
    el.photoCard.hidden = !view;
    renderPhotoButtons();
    if (!view) return;
    el.photoCard.dataset.lotId = view.lot_id;
    el.photoLot.textContent = "— " + t("lot_short", { seq: view.seq }) + " · " + view.product_name;

    const photo = view.photo;
    el.photoResult.hidden = !photo;
    el.photoResult.dataset.photoId = photo ? photo.id : "";
    if (photo) {
      if (el.photoThumb.getAttribute("src") !== photo.thumb_url) el.photoThumb.src = photo.thumb_url;
      el.photoThumb.width = photo.thumb_width;
      el.photoThumb.height = photo.thumb_height;
      // The full photo with outlines, sizes and defects drawn; the thumbnail once retention
      // has removed the full one.
      el.photoLink.href = photo.url ? "/api/photos/" + encodeURIComponent(photo.id) + "/annotated.png" : photo.thumb_url;
    }
    const result = photo && photo.grading;
    const proposal = proposalOf(view);
    el.proposalGrade.textContent = proposal
      ? t("proposal", { grade: gradeLabel(proposal.grade), pct: Math.round(proposal.confidence * 100) })
      : t("proposal_none");
    el.proposalGrade.dataset.grade = proposal ? proposal.grade : "";
    el.reasons.textContent = "";
    for (const r of (proposal && proposal.reasons) || []) {
      const li = document.createElement("li");
      li.setAttribute("data-testid", "reason");
      li.dataset.passed = String(Boolean(r.passed));
      li.textContent = lang === "en" ? r.text_en : r.text_vi;
      el.reasons.appendChild(li);
    }
    // Declined, no rules or an error: the station's own words, with what to do.
    const note = result && result.status !== "graded" ? result : null;
    el.photoNote.hidden = !note;
    el.photoNote.dataset.status = note ? note.status : "";
    el.photoNote.dataset.reason = (note && note.reason) || "";
    el.photoNote.textContent = note
      ? note.status === "declined"
        ? t("photo_declined", { message: lang === "en" ? note.message_en : note.message })
        : lang === "en" ? note.message_en : note.message
      : "";

    const grade = view.grade || {};
    el.gradeButtons.textContent = "";
    for (const g of view.grades) {
      const b = document.createElement("button");
      b.type = "button";
      b.className = "btn grade-btn";
      b.setAttribute("data-testid", "grade-" + g);
      b.dataset.grade = g;
      b.textContent = g === "reject" ? t("grade_reject") : g;
      b.setAttribute("aria-pressed", String(grade.grade === g));
      if (proposal && proposal.grade === g) b.classList.add("proposed");
      b.disabled = photoBusy;
      b.addEventListener("click", () => confirmGrade(g));
      el.gradeButtons.appendChild(b);
    }
    el.gradeConfirmed.hidden = !grade.grade;
    if (grade.grade) {
      const overridden = grade.proposed_grade && grade.proposed_grade !== grade.grade;
      el.gradeConfirmed.textContent = overridden
        ? t("grade_overridden", {
            grade: gradeLabel(grade.grade),
            proposed: gradeLabel(grade.proposed_grade),
            by: grade.confirmed_by,
          })
        : t("grade_confirmed", { grade: gradeLabel(grade.grade), by: grade.confirmed_by });
    }
    el.gradeConfirmed.dataset.grade = grade.grade || "";
  }

  async function photoRequest(send) {
    if (photoBusy || !photoView) return;
    photoBusy = true;
    renderPhoto();
    try {
      photoView = await send(photoView.lot_id);
      const result = photoView.photo && photoView.photo.grading;
      if (result && result.status === "graded") {
        showMessage("ok", both("photo_stored", () => ({ seq: photoView.seq })));
      } else if (result) {
        showMessage("error", { vi: result.message, en: result.message_en });
      }
    } catch (err) {
      showError(err);
    } finally {
      photoBusy = false;
      renderPhoto();
      refreshLots();
    }
  }

  function capturePhoto() {
    photoRequest((lotId) => api("POST", "/lots/" + encodeURIComponent(lotId) + "/capture", undefined, 60000));
  }

  function uploadPhoto() {
    const file = el.uploadInput.files && el.uploadInput.files[0];
    el.uploadInput.value = "";
    if (!file) return;
    photoRequest((lotId) => api("POST", "/lots/" + encodeURIComponent(lotId) + "/photos", file, 120000));
  }

  function graderName() {
    return el.graderName.value.trim() || "staff";
  }

  async function confirmGrade(g) {
    if (photoBusy || !photoView) return;
    photoBusy = true;
    renderPhoto();
    try {
      const res = await api("POST", "/lots/" + encodeURIComponent(photoView.lot_id) + "/grade", {
        grade: g,
        by: graderName(),
      });
      photoView = res;
      showMessage(
        "ok",
        both("grade_confirmed_msg", () => ({ seq: res.seq, grade: gradeLabel(res.confirmation.grade) })),
      );
    } catch (err) {
      showError(err);
    } finally {
      photoBusy = false;
      renderPhoto();
      refreshLots();
    }
  }

  function wirePhoto() {
    el.captureButton.addEventListener("click", capturePhoto);
    el.uploadInput.addEventListener("change", uploadPhoto);
    el.photoClose.addEventListener("click", () => {
      photoView = null;
      renderPhoto();
    });
    try {
      el.graderName.value = window.localStorage.getItem("station.grader") || "";
    } catch (_e) {
      /* private mode */
    }
    el.graderName.addEventListener("change", () => {
      try {
        window.localStorage.setItem("station.grader", el.graderName.value.trim());
      } catch (_e) {
        /* private mode: typed again next time */
      }
    });
  }

  // ---------------------------------------------------------------- simulator

  async function simulate(command) {
    try {
      await api("POST", "/simulator", command);
    } catch (err) {
      showError(err);
    }
    pollState();
  }

  function wireSimulator() {
    el.simForm.addEventListener("submit", (ev) => {
      ev.preventDefault();
      const grams = Number(el.simWeight.value);
      if (el.simWeight.value.trim() === "" || !Number.isInteger(grams)) {
        showMessage("error", both("sim_bad_weight"));
        return;
      }
      simulate({ weight_g: grams });
    });
    const buttons = {
      "sim-unstable": { unstable: true },
      "sim-stable": { unstable: false },
      "sim-unplug": { connected: false },
      "sim-replug": { connected: true },
      "sim-overload": { overload: true },
      "sim-clear-overload": { overload: false },
    };
    for (const [id, command] of Object.entries(buttons)) {
      $(id).addEventListener("click", () => simulate(command));
    }
  }

  // ---------------------------------------------------------------- start

  function start() {
    el.langToggle.addEventListener("click", () => {
      lang = lang === "vi" ? "en" : "vi";
      saveLang();
      applyLanguage();
    });
    el.producerSelect.addEventListener("change", updateRecordButton);
    el.productSelect.addEventListener("change", updateRecordButton);
    el.record.addEventListener("click", recordLot);
    wireAddForm(el.producerToggle, el.producerForm, saveProducer);
    wireAddForm(el.productToggle, el.productForm, saveProduct);
    wireSimulator();
    wireTare();
    wirePhoto();
    window.addEventListener("resize", () => renderWeight(weightGrams));
    document.addEventListener("visibilitychange", () => {
      if (!document.hidden) pollState();
    });

    applyLanguage();
    pollState();
    refreshCatalog();
    refreshLots();
    setInterval(refreshLots, LOTS_EVERY_MS);
    setInterval(() => {
      const active = document.activeElement;
      if (active !== el.producerSelect && active !== el.productSelect && active !== el.productGrading) {
        refreshCatalog();
      }
    }, CATALOG_EVERY_MS);
  }

  start();
})();
