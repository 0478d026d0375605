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
