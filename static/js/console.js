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
document.body.addEventListener("htmx:wsOpen", () => document.getElementById("live-indicator")?.classList.add("on"));
document.body.addEventListener("htmx:wsClose", () => document.getElementById("live-indicator")?.classList.remove("on"));
// The server closes a page's socket with 4401 when its session ends (sign-out elsewhere, password
// change, deactivation): reload, which lands on the sign-in page if the session is gone.
document.body.addEventListener("htmx:wsClose", (event) => {
  if (event.detail?.event?.code === 4401) window.location.reload();
});
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
