// The Enrollment page (a file, not inline: CSP): copy the key shown once, hand it to the QR
// builder and the one-liner (a form's 422 answer is swapped in place by base.html's htmx-config),
// and offer the keys made in this tab in a list beside their key fields.

async function copyText(text) {
  if (navigator.clipboard && window.isSecureContext) {
    await navigator.clipboard.writeText(text);
    return;
  }
  // Plain http on a LAN is not a secure context: no Clipboard API there.
  const area = document.createElement("textarea");
  area.value = text;
  area.setAttribute("readonly", "");
  area.className = "offscreen";
  document.body.append(area);
  area.select();
  const done = document.execCommand("copy");
  area.remove();
  if (!done) throw new Error("copy refused");
}

function say(button, text) {
  const feedback = button.parentElement.querySelector("[data-feedback]");
  if (feedback) feedback.textContent = text;
}

document.addEventListener("click", async (event) => {
  const copy = event.target.closest("[data-copy]");
  if (copy) {
    const text = document.getElementById(copy.dataset.copy).textContent.trim();
    try {
      await copyText(text);
      say(copy, "Copied.");
    } catch {
      say(copy, "The browser refused: select the key and copy it.");
    }
    return;
  }
  const use = event.target.closest("[data-use-key]");
  if (use) {
    const key = document.getElementById(use.dataset.useKey).textContent.trim();
    const fields = document.querySelectorAll("#qr-builder [name=enroll_key], #oneliner [name=enroll_key]");
    fields.forEach((field) => {
      field.value = key;
      // What typing does: the field's hx-trigger asks the server which key it is.
      field.dispatchEvent(new Event("input", { bubbles: true }));
    });
    say(use, fields.length ? "Filled in below." : "No QR builder or one-liner on this page.");
    document.getElementById("qr")?.scrollIntoView({ block: "start" });
  }
});

// Keys are stored hashed on the server (shown once), so the only keys that can be offered in a list
// are the ones this tab was shown: kept in sessionStorage (this tab only, gone when it closes).
const KEYS = "mdm.enrollment.keys";

function madeKeys() {
  try {
    return JSON.parse(sessionStorage.getItem(KEYS) || "[]");
  } catch {
    return [];
  }
}

function rememberNewKey() {
  const shown = document.getElementById("new-key");
  if (!shown) return;
  const keys = madeKeys().filter((k) => k.id !== shown.dataset.keyId);
  keys.unshift({ id: shown.dataset.keyId, name: shown.dataset.keyName, raw: shown.textContent.trim() });
  sessionStorage.setItem(KEYS, JSON.stringify(keys.slice(0, 20)));
}

function fillPickers() {
  const keys = madeKeys();
  document.querySelectorAll("[data-key-picker]").forEach((select) => {
    select.closest(".key-picker").hidden = keys.length === 0;
    const field = select.closest("form").querySelector("[name=enroll_key]");
    select.replaceChildren(new Option("Choose a key…", ""), ...keys.map((k) => new Option(k.name, k.id)));
    const current = keys.find((k) => k.raw === field?.value);
    if (current) select.value = current.id;
  });
}

document.addEventListener("change", (event) => {
  const select = event.target.closest("[data-key-picker]");
  if (!select) return;
  const key = madeKeys().find((k) => k.id === select.value);
  const field = select.closest("form").querySelector("[name=enroll_key]");
  if (!key || !field) return;
  field.value = key.raw;
  field.dispatchEvent(new Event("input", { bubbles: true }));  // the server says which key it is
});

function refreshKeys() {
  rememberNewKey();
  fillPickers();
}
document.addEventListener("DOMContentLoaded", refreshKeys);
document.body.addEventListener("htmx:afterSettle", refreshKeys);
