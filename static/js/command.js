// A command's page. Live updates carry the same counters for every user, but the buttons depend
// on who is looking (an operator's cancel and retry), so when an update changes which buttons apply
// (#command-counters' data-actions: a finished or cancelled command has no cancel), this user's
// buttons are fetched again, once per change.
document.body.addEventListener("htmx:wsAfterMessage", () => {
  const counters = document.getElementById("command-counters");
  const actions = document.getElementById("command-actions");
  if (!counters || !actions || counters.dataset.actions === actions.dataset.actions) return;
  actions.dataset.actions = counters.dataset.actions;
  htmx.ajax("GET", actions.dataset.url + window.location.search, { target: actions, swap: "outerHTML" });
});
