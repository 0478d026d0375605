// The store's rules with a stand-in for tus-js-client's Upload (the real one runs against the real
// server in tests/test_apk_uploader_browser.py) and a scripted fetch for the result endpoint.

import assert from "node:assert/strict";
import { test } from "node:test";

import { RETRY_DELAYS, UploaderStore } from "../src/store.js";

// Node 18 (Debian's) has no global CustomEvent; browsers and Node 19+ do.
if (typeof globalThis.CustomEvent === "undefined") {
  globalThis.CustomEvent = class CustomEvent extends Event {
    constructor(type, init = {}) {
      super(type, init);
      this.detail = init.detail ?? null;
    }
  };
}

const ENDPOINT = "http://console.test/api/v1/uploads/";
const RELEASE = {
  id: "9b1d", package: "com.example.kiosk", version_code: 7, version_name: "1.7", label: "Kiosk",
  sha256: "ab".repeat(32), signer_sha256: "cd".repeat(32), size: 1234, min_sdk: 26, channel: "beta", url: "/apks/9b1d/",
};

class FakeUpload {
  static made = [];
  static terminated = [];
  static previous = [];

  static terminate(url) {
    FakeUpload.terminated.push(url);
    return Promise.resolve();
  }

  constructor(file, options) {
    this.file = file;
    this.options = options;
    this.url = null;
    this.starts = 0;
    this.aborts = [];
    this.resumedFrom = null;
    FakeUpload.made.push(this);
  }

  findPreviousUploads() {
    return Promise.resolve(FakeUpload.previous);
  }

  resumeFromPreviousUpload(previous) {
    this.resumedFrom = previous;
    this.url = previous.uploadUrl;
  }

  start() {
    this.starts += 1;
    this.url = this.url || `${ENDPOINT}${this.file.name}-id`;
  }

  abort(terminate) {
    this.aborts.push(Boolean(terminate));
    return this.failTermination ? Promise.reject(new Error("no answer")) : Promise.resolve();
  }

  // What tus-js-client does on an error: ask onShouldRetry while attempts are left, else onError.
  fail(status, body = "", attempt = 0) {
    const error = new Error("tus: failed");
    error.originalRequest = {};
    if (status) error.originalResponse = { getStatus: () => status, getBody: () => body };
    if (this.options.onShouldRetry(error, attempt, this.options)) return "retrying";
    this.options.onError(error);
    return "gave up";
  }
}

function file(name, size = 1000) {
  return { name, size, type: "application/vnd.android.package-archive", lastModified: 1 };
}

function answer(status, body) {
  return { ok: status >= 200 && status < 300, status, text: () => Promise.resolve(JSON.stringify(body)) };
}

function makeStore({ answers = [], online = () => true, storage = [] } = {}) {
  FakeUpload.made = [];
  FakeUpload.terminated = [];
  FakeUpload.previous = [];
  const requests = [];
  const events = new EventTarget();
  const dispatched = [];
  events.addEventListener("apk-uploaded", (e) => dispatched.push(e.detail));
  let clock = 0;
  const removed = [];
  const store = new UploaderStore({
    endpoint: ENDPOINT,
    csrf: "csrf-token",
    chunkSize: 1024,
    Upload: FakeUpload,
    urlStorage: {
      findAllUploads: () => Promise.resolve(storage.filter((e) => !removed.includes(e.urlStorageKey))),
      removeUpload: (key) => {
        removed.push(key);
        return Promise.resolve();
      },
    },
    fetch: (url, init) => {
      requests.push({ url, method: init.method, headers: init.headers });
      const next = answers.shift();
      if (next instanceof Error) return Promise.reject(next);
      return next ? Promise.resolve(next) : new Promise(() => {}); // no more answers: the server is thinking
    },
    events,
    isOnline: online,
    now: () => (clock += 250),
    sleep: () => Promise.resolve(),
  });
  return { store, requests, dispatched, removed };
}

const settle = () => new Promise((resolve) => setTimeout(resolve, 0));
const item = (store, id) => store.getSnapshot().items.find((i) => i.id === id);

test("a file is sent with its channel, notes and the CSRF header, then its release is shown and announced", async () => {
  const { store, requests, dispatched } = makeStore({
    answers: [answer(200, { state: "uploading", offset: 4096, length: 4096 }), answer(200, { state: "parsing" }), answer(200, { state: "done", release: RELEASE })],
  });
  const [id] = store.addFiles([file("kiosk.apk", 4096)], { channel: "beta", notes: "  night build " });
  await settle();
  const upload = FakeUpload.made[0];
  assert.equal(upload.starts, 1);
  assert.deepEqual(upload.options.metadata, { filename: "kiosk.apk", channel: "beta", notes: "night build" });
  assert.equal(upload.options.headers["X-CSRFToken"], "csrf-token");
  assert.equal(upload.options.chunkSize, 1024);
  assert.equal(upload.options.endpoint, ENDPOINT);
  assert.equal(upload.options.removeFingerprintOnSuccess, true);

  upload.options.onProgress(1024, 4096);
  upload.options.onProgress(2048, 4096);
  upload.options.onProgress(3072, 4096);
  upload.options.onProgress(4096, 4096);
  const sending = item(store, id);
  assert.equal(sending.state, "uploading");
  assert.equal(sending.sent, 4096);
  assert.ok(sending.speed > 0);
  assert.equal(sending.secondsLeft, 0);

  upload.options.onSuccess({});
  await settle();
  await settle();
  const done = item(store, id);
  assert.equal(done.state, "done");
  assert.deepEqual(done.release, RELEASE);
  assert.deepEqual(dispatched, [RELEASE]);
  assert.deepEqual(requests.map((r) => [r.method, r.url]), [
    ["GET", `${ENDPOINT}kiosk.apk-id/result`],
    ["GET", `${ENDPOINT}kiosk.apk-id/result`],
    ["GET", `${ENDPOINT}kiosk.apk-id/result`],
  ]);
  assert.match(store.getSnapshot().announcement, /kiosk\.apk uploaded: Kiosk 1\.7 \(version code 7\)/);
});

test("empty notes are not sent", async () => {
  const { store } = makeStore();
  store.addFiles([file("a.apk")], { channel: "stable", notes: "   " });
  await settle();
  assert.deepEqual(FakeUpload.made[0].options.metadata, { filename: "a.apk", channel: "stable" });
});

test("a file that is not an APK is refused without a request", async () => {
  const { store } = makeStore();
  const [id] = store.addFiles([file("photo.jpg")], { channel: "stable", notes: "" });
  await settle();
  assert.equal(FakeUpload.made.length, 0);
  assert.equal(item(store, id).state, "failed");
  assert.match(item(store, id).error.detail, /only \.apk files/);
  store.dismiss(id);
  assert.equal(store.getSnapshot().items.length, 0);
});

test("at most two files send at once; the next starts when one is through", async () => {
  const { store } = makeStore();
  const ids = store.addFiles([file("a.apk"), file("b.apk"), file("c.apk")], { channel: "stable", notes: "" });
  await settle();
  assert.deepEqual(ids.map((id) => item(store, id).state), ["uploading", "uploading", "queued"]);
  FakeUpload.made[0].options.onSuccess({});
  await settle();
  assert.equal(item(store, ids[2]).state, "uploading");
});

test("a lost connection is retried with growing delays, and the retry is shown until bytes flow again", async () => {
  const { store } = makeStore();
  const [id] = store.addFiles([file("a.apk")], { channel: "stable", notes: "" });
  await settle();
  const upload = FakeUpload.made[0];
  assert.deepEqual(upload.options.retryDelays, RETRY_DELAYS);
  assert.ok(RETRY_DELAYS.every((d, i) => i === 0 || d >= RETRY_DELAYS[i - 1]));
  assert.equal(upload.fail(0, "", 2), "retrying");
  assert.deepEqual(item(store, id).retry, { attempt: 3, of: RETRY_DELAYS.length, delayMs: 4000, detail: "The connection to the server was lost." });
  assert.equal(item(store, id).state, "retrying");
  assert.equal(upload.fail(503, ""), "retrying");
  upload.options.onProgress(10, 1000);
  assert.equal(item(store, id).state, "uploading");
  assert.equal(item(store, id).retry, null);
});

test("a refusal by the server is not retried and shows the server's detail", async () => {
  const { store } = makeStore();
  const [id] = store.addFiles([file("a.apk")], { channel: "stable", notes: "" });
  await settle();
  const upload = FakeUpload.made[0];
  assert.equal(upload.fail(413, JSON.stringify({ detail: "APKs are limited to 200 MB.", code: "too_large" })), "gave up");
  const failed = item(store, id);
  assert.equal(failed.state, "failed");
  assert.deepEqual(failed.error, { detail: "APKs are limited to 200 MB.", code: "too_large", status: 413 });
  assert.equal(failed.canRetry, true);
  store.resume(id);
  assert.equal(item(store, id).state, "uploading");
  assert.equal(upload.starts, 2);
});

test("an answer without JSON gets a sentence for its status", async () => {
  const { store } = makeStore();
  const [id] = store.addFiles([file("a.apk")], { channel: "stable", notes: "" });
  await settle();
  FakeUpload.made[0].fail(403, "<html>Forbidden</html>");
  assert.match(item(store, id).error.detail, /not allowed to upload/);
});

test("offline, no attempt is spent: the upload waits and goes on when the browser is back online", async () => {
  let online = true;
  const { store } = makeStore({ online: () => online });
  const [id] = store.addFiles([file("a.apk")], { channel: "stable", notes: "" });
  await settle();
  const upload = FakeUpload.made[0];
  online = false;
  store.wentOffline();
  assert.equal(item(store, id).state, "offline");
  assert.deepEqual(upload.aborts, [false]);
  assert.equal(upload.fail(0), "gave up"); // the aborted request's error, if any, changes nothing
  assert.equal(item(store, id).state, "offline");
  online = true;
  store.cameOnline();
  assert.equal(item(store, id).state, "uploading");
  assert.equal(upload.starts, 2);
});

test("pause keeps the upload on the server, resume goes on from there, cancel deletes it", async () => {
  const { store } = makeStore();
  const [id] = store.addFiles([file("a.apk")], { channel: "stable", notes: "" });
  await settle();
  const upload = FakeUpload.made[0];
  store.pause(id);
  assert.equal(item(store, id).state, "paused");
  assert.deepEqual(upload.aborts, [false]);
  store.resume(id);
  assert.equal(item(store, id).state, "uploading");
  assert.equal(upload.starts, 2);
  await store.cancel(id);
  assert.deepEqual(upload.aborts, [false, true]);
  assert.equal(item(store, id), undefined);
});

test("a cancel the server cannot hear still forgets the stored URL, so the file starts afresh", async () => {
  const key = "tus::tus-br-a.apk::1";
  const { store, removed } = makeStore({ storage: [{ uploadUrl: `${ENDPOINT}a.apk-id`, urlStorageKey: key }] });
  const [id] = store.addFiles([file("a.apk")], { channel: "stable", notes: "" });
  await settle();
  FakeUpload.made[0].failTermination = true;
  await store.cancel(id);
  assert.deepEqual(removed, [key]);
});

test("a file chosen again after a reload resumes its earlier upload with the channel it began with", async () => {
  const earlier = {
    uploadUrl: `${ENDPOINT}old-id`, urlStorageKey: "tus::fp::1", size: 1000,
    metadata: { filename: "a.apk", channel: "beta", notes: "first try" }, creationTime: "Tue Mar 03 2026 10:00:00 GMT+0000",
  };
  const other = { uploadUrl: "http://elsewhere.test/files/x", urlStorageKey: "tus::fp2::2", metadata: { filename: "b.apk" } };
  const { store } = makeStore({ storage: [earlier, other] });
  await store.loadUnfinished();
  assert.deepEqual(store.getSnapshot().unfinished.map((u) => u.name), ["a.apk"]); // not another server's
  FakeUpload.previous = [earlier];
  const [id] = store.addFiles([file("a.apk")], { channel: "stable", notes: "" });
  await settle();
  const upload = FakeUpload.made[0];
  assert.equal(upload.resumedFrom, earlier);
  const resumed = item(store, id);
  assert.equal(resumed.resumed, true);
  assert.equal(resumed.channel, "beta");
  assert.equal(resumed.notes, "first try");
  assert.deepEqual(store.getSnapshot().unfinished, []);
});

test("an unfinished upload can be discarded: deleted on the server and forgotten", async () => {
  const earlier = { uploadUrl: `${ENDPOINT}old-id`, urlStorageKey: "tus::fp::1", metadata: { filename: "a.apk" } };
  const { store, removed } = makeStore({ storage: [earlier] });
  await store.loadUnfinished();
  await store.discardUnfinished("tus::fp::1");
  assert.deepEqual(FakeUpload.terminated, [`${ENDPOINT}old-id`]);
  assert.deepEqual(removed, ["tus::fp::1"]);
  assert.deepEqual(store.getSnapshot().unfinished, []);
});

test("a refusal is shown with its detail; a signer change can be confirmed and then succeeds", async () => {
  const { store, requests, dispatched } = makeStore({
    answers: [
      answer(200, { state: "refused", detail: "Signed by another key than release 6.", code: "signer_changed" }),
      answer(200, { state: "parsing" }),
      answer(200, { state: "done", release: RELEASE }),
    ],
  });
  const [id] = store.addFiles([file("a.apk")], { channel: "stable", notes: "" });
  await settle();
  FakeUpload.made[0].options.onSuccess({});
  await settle();
  const refused = item(store, id);
  assert.equal(refused.state, "refused");
  assert.deepEqual([refused.refusal.detail, refused.refusal.code], ["Signed by another key than release 6.", "signer_changed"]);
  assert.deepEqual(dispatched, []);

  await store.confirmSigner(id);
  await settle();
  assert.equal(item(store, id).state, "done");
  assert.deepEqual(dispatched, [RELEASE]);
  const confirm = requests[1];
  assert.equal(confirm.method, "POST");
  assert.equal(confirm.url, `${ENDPOINT}a.apk-id/confirm-signer`);
  assert.equal(confirm.headers["X-CSRFToken"], "csrf-token");
});

test("a confirmation the server refuses (not an admin) leaves the refusal with the reason", async () => {
  const { store } = makeStore({
    answers: [
      answer(200, { state: "refused", detail: "Signer changed.", code: "signer_changed" }),
      answer(403, { detail: "Only an admin can confirm a signer change.", code: "permission_denied" }),
    ],
  });
  const [id] = store.addFiles([file("a.apk")], { channel: "stable", notes: "" });
  await settle();
  FakeUpload.made[0].options.onSuccess({});
  await settle();
  await store.confirmSigner(id);
  const still = item(store, id);
  assert.equal(still.state, "refused");
  assert.equal(still.refusal.problem, "Only an admin can confirm a signer change.");
});

test("the result poll rides out a lost connection and a 5xx, and stops with the detail of a 4xx", async () => {
  const { store } = makeStore({
    answers: [new TypeError("Failed to fetch"), answer(502, {}), answer(404, { detail: "No such upload.", code: "not_found" })],
  });
  const [id] = store.addFiles([file("a.apk")], { channel: "stable", notes: "" });
  await settle();
  FakeUpload.made[0].options.onSuccess({});
  for (let i = 0; i < 5; i += 1) await settle();
  const failed = item(store, id);
  assert.equal(failed.state, "failed");
  assert.equal(failed.error.detail, "No such upload.");
  assert.equal(failed.canRecheck, true);
  assert.equal(failed.canRetry, false);
});
