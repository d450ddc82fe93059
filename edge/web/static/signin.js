/* signin.js: who is using the page. Before anything else the page asks GET /api/me;
 * without a session it shows the sign-in form (name and PIN) and waits. A request
 * answered 401 later (the shift's session ended, a lead disabled the account) shows the
 * form again; after signing in the page reloads so everything is fetched as that person.
 * The name last used on this device is filled in; the PIN never is.
 */
import { api, ApiError } from "./api.js";
import { lang, t } from "./i18n.js";
import { $ } from "./page.js";

const form = $("signin");
const nameInput = $("signin-name");
const pinInput = $("signin-pin");
const errorBox = $("signin-error");
const who = $("person-name");
const signoutButton = $("signout");

/** The signed-in person {id, name, role}, once known. */
export let person = null;

function remembered() {
  try {
    return window.localStorage.getItem("station.person") || "";
  } catch (_e) {
    return "";
  }
}

function remember(name) {
  try {
    window.localStorage.setItem("station.person", name);
  } catch (_e) {
    /* private mode */
  }
}

export function renderPerson() {
  if (!person) {
    who.textContent = "";
    signoutButton.hidden = true;
    return;
  }
  who.textContent = t("signed_in_as", { name: person.name, role: t("role_" + person.role) });
  signoutButton.hidden = false;
}

function showForm() {
  form.hidden = false;
  document.body.classList.add("signing-in");
  if (!nameInput.value) nameInput.value = remembered();
  (nameInput.value ? pinInput : nameInput).focus();
}

function submitted() {
  return new Promise((resolve) => {
    form.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      errorBox.hidden = true;
      try {
        const body = await api("POST", "/login", { name: nameInput.value.trim(), pin: pinInput.value });
        remember(body.person.name);
        resolve(body.person);
      } catch (err) {
        pinInput.value = "";
        errorBox.textContent = err instanceof ApiError ? err.msg[lang] : String(err);
        errorBox.hidden = false;
        pinInput.focus();
      }
    });
  });
}

/** Resolves with the signed-in person, asking for a name and PIN first if needed. */
export async function signIn() {
  signoutButton.addEventListener("click", async () => {
    try {
      await api("POST", "/logout");
    } finally {
      window.location.reload();
    }
  });
  window.addEventListener("station:signed-out", () => {
    if (person) window.location.reload(); // the session ended: start over at the form
  });
  try {
    person = await api("GET", "/me");
  } catch (err) {
    if (!(err instanceof ApiError) || err.status !== 401) throw err;
    showForm();
    person = await submitted();
    window.location.reload();
    return new Promise(() => {}); // the reload takes over
  }
  form.hidden = true;
  renderPerson();
  return person;
}
