// Small console behaviours that HTMX does not cover: drawers and the live indicator.
document.addEventListener("click", (event) => {
  const opener = event.target.closest("[data-opens]");
  if (opener) {
    event.preventDefault();
    document.getElementById(opener.dataset.opens).showModal();
  }
  const closer = event.target.closest("[data-closes]");
  if (closer) document.getElementById(closer.dataset.closes).close();
});

// The live indicator says what the WebSocket is doing: live, or disconnected (the ws extension
// reconnects by itself, with backoff) -- never "live" while the socket is down.
function showLive(state) {
  const indicator = document.getElementById("live-indicator");
  if (!indicator) return;
  const open = state === "open";
  indicator.classList.toggle("on", open);
  indicator.classList.toggle("off", !open);
  indicator.textContent = open ? "\u25CF Live" : "\u25CB Disconnected";
  indicator.title = open ? "Live updates: connected" : "Live updates: disconnected, reconnecting";
}
document.body.addEventListener("htmx:wsOpen", () => showLive("open"));
document.body.addEventListener("htmx:wsClose", () => showLive("closed"));
document.body.addEventListener("htmx:wsError", () => showLive("closed"));
// The server closes a page's socket with 4401 when its session ends (sign-out elsewhere, password
// change, deactivation): reload, which lands on the sign-in page if the session is gone.
document.body.addEventListener("htmx:wsClose", (event) => {
  if (event.detail?.event?.code === 4401) window.location.reload();
});

// On a phone the sidebar is a menu: its button opens and closes it; Escape or a click outside
// closes it (and Escape gives the focus back to the button).
function setMenu(open, focusButton = false) {
  const sidebar = document.querySelector(".sidebar");
  const button = sidebar?.querySelector(".menu-toggle");
  if (!button) return;
  sidebar.classList.toggle("open", open);
  button.setAttribute("aria-expanded", String(open));
  if (focusButton) button.focus();
}
document.addEventListener("click", (event) => {
  if (event.target.closest(".menu-toggle")) {
    setMenu(event.target.closest(".menu-toggle").getAttribute("aria-expanded") !== "true");
  } else if (!event.target.closest(".sidebar") || event.target.closest("[data-opens]")) {
    setMenu(false);  // a click outside, or on Settings (its drawer opens over the page)
  }
});
document.addEventListener("keydown", (event) => {
  if (event.key === "Escape" && document.querySelector(".sidebar.open")) setMenu(false, true);
});

// A table or block that scrolls (sideways on a phone, or a long payload) and holds nothing
// focusable is made focusable, so that the keyboard can scroll it too (WCAG 2.1.1).
function keyboardScrollable(root) {
  root.querySelectorAll("main table, main pre, main .table-wrap").forEach((el) => {
    const style = getComputedStyle(el), scrollable = (v) => v === "auto" || v === "scroll";
    const scrolls = (scrollable(style.overflowX) && el.scrollWidth > el.clientWidth + 1)
      || (scrollable(style.overflowY) && el.scrollHeight > el.clientHeight + 1);
    const focusable = el.querySelector("a[href], button, input, select, textarea, [tabindex]");
    if (scrolls && !focusable && !el.hasAttribute("tabindex")) el.setAttribute("tabindex", "0");
  });
}
document.addEventListener("DOMContentLoaded", () => keyboardScrollable(document));
document.body.addEventListener("htmx:afterSettle", () => keyboardScrollable(document));
window.addEventListener("resize", () => keyboardScrollable(document));

// A filter bar sent on change (htmx) that the browser finds invalid (a number under its min) is not
// sent, and htmx says nothing: show the browser's own message beside the field, as a submit would.
document.body.addEventListener("htmx:validation:halted", (event) => event.detail?.elt?.reportValidity?.());
// A form sent and answered with its errors (422, swapped in place): bring the first error into view
// (a long form or the settings drawer may be scrolled past it) and put the cursor in its field.
// Not for a filter bar (GET), which answers as it is typed in: the cursor stays where it is.
document.body.addEventListener("htmx:afterSettle", (event) => {
  if (event.detail.xhr?.status !== 422 || event.detail.requestConfig?.verb === "get") return;
  const first = [...document.querySelectorAll("small.error, .form-errors, .errors")].find((e) => e.offsetParent !== null);
  if (!first) return;
  first.scrollIntoView({ block: "nearest" });
  first.closest("label, fieldset")?.querySelector("input, select, textarea")?.focus({ preventScroll: true });
});
