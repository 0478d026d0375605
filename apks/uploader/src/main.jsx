// Entry point: mounts the uploader on <div id="apk-uploader" data-endpoint data-csrf data-channels>
// (templates/apks/). Everything is read from data attributes: the console's CSP allows no inline
// script to pass settings in.
import { createRoot } from "react-dom/client";
import * as tus from "tus-js-client";

import { Uploader } from "./Uploader.jsx";
import { DEFAULT_CHUNK_SIZE, UploaderStore } from "./store.js";

function positiveInt(value) {
  const n = Number.parseInt(value || "", 10);
  return Number.isFinite(n) && n > 0 ? n : null;
}

function mount(element) {
  const data = element.dataset;
  const channels = (data.channels || "stable")
    .split(",")
    .map((c) => c.trim())
    .filter(Boolean);
  const store = new UploaderStore({
    // Absolute, so the upload URLs kept in localStorage can be matched to this server.
    endpoint: new URL(data.endpoint || "/api/v1/uploads/", window.location.href).href,
    csrf: data.csrf || "",
    chunkSize: positiveInt(data.chunkSize) || DEFAULT_CHUNK_SIZE,
    Upload: tus.Upload,
    urlStorage: tus.defaultOptions.urlStorage,
    fetch: window.fetch.bind(window),
    events: document,
    isOnline: () => navigator.onLine !== false,
  });
  window.addEventListener("offline", () => store.wentOffline());
  window.addEventListener("online", () => store.cameOnline());
  store.loadUnfinished();
  createRoot(element).render(<Uploader store={store} channels={channels} supported={tus.isSupported} />);
}

function start() {
  const element = document.getElementById("apk-uploader");
  if (element) mount(element);
}

if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
else start();
