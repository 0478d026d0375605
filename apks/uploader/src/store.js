// The uploader's state outside React: one Task per file, each driving a tus-js-client Upload, then
// polling the server's parse result. React reads immutable snapshots (useSyncExternalStore), so
// every rule lives here and is tested by node --test (test/store.test.js) with a stand-in Upload.

import { describeAnswer, describeTusError, isTransient, joinUrl, parseJson, tusStatus } from "./api.js";
import { SpeedMeter } from "./speed.js";

export const DEFAULT_CHUNK_SIZE = 5 * 1024 * 1024;
// Exponential backoff capped at 30 s: about 4 minutes of trying before the upload is shown as
// failed. tus-js-client starts counting again as soon as a chunk gets through.
export const RETRY_DELAYS = [1000, 2000, 4000, 8000, 16000, 30000, 30000, 30000, 30000, 30000];
export const MAX_PARALLEL = 2;
const PROGRESS_EVERY_MS = 200;
const POLL_FIRST_MS = 500;
const POLL_MAX_MS = 5000;

// States that hold one of the MAX_PARALLEL slots.
const SENDING = new Set(["checking", "uploading", "retrying"]);
// States a user can pause out of, and resume (or retry) from.
export const PAUSABLE = new Set(["queued", "checking", "uploading", "retrying", "offline"]);
export const RESUMABLE = new Set(["paused", "failed", "offline"]);
export const FINISHED = new Set(["done", "refused", "failed"]);

const realSleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

let lastId = 0;

class Task {
  constructor(file, { channel, notes }) {
    lastId += 1;
    this.id = `upload-${lastId}`;
    this.file = file;
    this.name = file.name;
    this.size = file.size;
    this.channel = channel;
    this.notes = notes;
    this.state = "queued";
    this.sent = 0;
    this.speed = null;
    this.secondsLeft = null;
    this.retry = null; // {attempt, of, delayMs, detail} while a retry is scheduled
    this.error = null; // {detail, code, status}
    this.canRetry = false; // failed while sending: start again from the server's offset
    this.canRecheck = false; // failed while asking for the result: ask again
    this.release = null;
    this.refusal = null; // {detail, code}
    this.resumed = false;
    this.busy = false; // a confirm-signer request is under way
    this.upload = null;
    this.started = false;
    this.url = null;
    this.meter = new SpeedMeter();
    this.lastEmit = 0;
  }

  view() {
    return {
      id: this.id,
      name: this.name,
      size: this.size,
      channel: this.channel,
      notes: this.notes,
      state: this.state,
      sent: this.sent,
      speed: this.speed,
      secondsLeft: this.secondsLeft,
      retry: this.retry,
      error: this.error,
      canRetry: this.canRetry,
      canRecheck: this.canRecheck,
      release: this.release,
      refusal: this.refusal,
      resumed: this.resumed,
      busy: this.busy,
    };
  }
}

export class UploaderStore {
  /**
   * @param {object} config endpoint (absolute URL), csrf, chunkSize, maxParallel, and the
   *   environment: Upload (tus-js-client's class), urlStorage, fetch, events (where
   *   "apk-uploaded" is dispatched), isOnline, now, sleep.
   */
  constructor(config) {
    this.endpoint = config.endpoint;
    this.csrf = config.csrf;
    this.chunkSize = config.chunkSize || DEFAULT_CHUNK_SIZE;
    this.maxParallel = config.maxParallel || MAX_PARALLEL;
    this.Upload = config.Upload;
    this.urlStorage = config.urlStorage;
    this.fetch = config.fetch;
    this.events = config.events;
    this.isOnline = config.isOnline || (() => true);
    this.now = config.now || (() => Date.now());
    this.sleep = config.sleep || realSleep;
    this.tasks = [];
    this.unfinished = [];
    this.announcement = "";
    this.listeners = new Set();
    this.snapshot = this.buildSnapshot();
    this.subscribe = this.subscribe.bind(this);
    this.getSnapshot = this.getSnapshot.bind(this);
  }

  // --- React's side ------------------------------------------------------------------------

  subscribe(listener) {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  getSnapshot() {
    return this.snapshot;
  }

  buildSnapshot() {
    return { items: this.tasks.map((t) => t.view()), unfinished: this.unfinished, announcement: this.announcement };
  }

  emit(announcement) {
    if (announcement !== undefined) this.announcement = announcement;
    this.snapshot = this.buildSnapshot();
    for (const listener of this.listeners) listener();
  }

  find(id) {
    return this.tasks.find((t) => t.id === id);
  }

  // --- Adding files and the queue ----------------------------------------------------------

  /** Queue the files with the channel and notes chosen now; non-APKs are refused here. */
  addFiles(files, { channel, notes }) {
    const added = [];
    for (const file of files) {
      const task = new Task(file, { channel, notes: (notes || "").trim() });
      if (!file.name.toLowerCase().endsWith(".apk")) {
        task.state = "failed";
        task.error = { detail: "Not an APK: only .apk files can be uploaded.", code: "not_apk", status: 0 };
      }
      this.tasks.push(task);
      added.push(task);
    }
    const names = added.map((t) => t.name).join(", ");
    this.emit(added.length ? `Added ${names}.` : undefined);
    this.pump();
    return added.map((t) => t.id);
  }

  /** Start queued files while fewer than maxParallel are sending. */
  pump() {
    let sending = this.tasks.filter((t) => SENDING.has(t.state)).length;
    for (const task of this.tasks) {
      if (sending >= this.maxParallel) break;
      if (task.state !== "queued") continue;
      sending += 1;
      if (task.started) this.restart(task);
      else this.begin(task);
    }
  }

  begin(task) {
    task.state = "checking";
    const metadata = { filename: task.name, channel: task.channel };
    if (task.notes) metadata.notes = task.notes;
    const upload = new this.Upload(task.file, {
      endpoint: this.endpoint,
      chunkSize: this.chunkSize,
      retryDelays: RETRY_DELAYS,
      removeFingerprintOnSuccess: true,
      headers: { "X-CSRFToken": this.csrf },
      metadata,
      onProgress: (sent, total) => this.progress(task, sent, total),
      onChunkComplete: (_chunk, accepted, total) => this.progress(task, accepted, total),
      onShouldRetry: (error, attempt, options) => this.shouldRetry(task, error, attempt, options),
      onError: (error) => this.failed(task, error),
      onSuccess: () => this.uploaded(task),
    });
    task.upload = upload;
    this.emit();
    upload
      .findPreviousUploads()
      .then((previous) => {
        if (task.state !== "checking") return; // paused or cancelled meanwhile
        const match = newestFirst(previous.filter((p) => p.uploadUrl))[0];
        if (match) {
          // The server keeps what was chosen when the upload began.
          upload.resumeFromPreviousUpload(match);
          task.resumed = true;
          if (match.metadata && match.metadata.channel) task.channel = match.metadata.channel;
          if (match.metadata) task.notes = match.metadata.notes || "";
          this.unfinished = this.unfinished.filter((u) => u.key !== match.urlStorageKey);
        }
        task.state = "uploading";
        task.started = true;
        task.meter.reset();
        this.emit(`${task.name}: ${match ? "resuming" : "uploading"}.`);
        upload.start();
      })
      .catch((error) => this.failed(task, error));
  }

  /** Send again from the server's offset (tus-js-client asks with HEAD first). */
  restart(task) {
    task.state = "uploading";
    task.retry = null;
    task.error = null;
    task.canRetry = false;
    task.meter.reset();
    this.emit(`${task.name}: uploading.`);
    task.upload.start();
  }

  // --- tus-js-client's callbacks -----------------------------------------------------------

  progress(task, sent, total) {
    if (!SENDING.has(task.state)) return;
    task.sent = sent;
    let changed = false;
    if (task.state === "retrying") {
      task.state = "uploading";
      task.retry = null;
      changed = true;
    }
    const now = this.now();
    task.meter.add(now, sent);
    // Progress events come many times a second: the list is redrawn at most five times a second.
    if (!changed && now - task.lastEmit < PROGRESS_EVERY_MS && sent < total) return;
    task.lastEmit = now;
    task.speed = task.meter.speed();
    task.secondsLeft = task.meter.secondsLeft(total);
    this.emit();
  }

  shouldRetry(task, error, attempt, options) {
    // Offline: no attempt is spent; the upload waits for the browser's "online" event instead.
    if (!this.isOnline()) return false;
    if (!isTransient(tusStatus(error))) return false;
    task.state = "retrying";
    task.retry = {
      attempt: attempt + 1,
      of: options.retryDelays.length,
      delayMs: options.retryDelays[attempt],
      detail: describeTusError(error).detail,
    };
    task.speed = null;
    task.secondsLeft = null;
    task.meter.reset();
    this.emit(`${task.name}: connection problem, retrying in ${Math.round(task.retry.delayMs / 1000)} s.`);
    return true;
  }

  failed(task, error) {
    if (!SENDING.has(task.state)) return; // paused or cancelled: the abort's error means nothing
    task.retry = null;
    task.speed = null;
    task.secondsLeft = null;
    if (!this.isOnline()) {
      task.state = "offline";
      this.emit(`${task.name}: offline, waiting for the connection.`);
    } else {
      task.state = "failed";
      task.error = describeTusError(error);
      task.canRetry = true;
      this.emit(`${task.name} failed: ${task.error.detail}`);
    }
    this.pump();
  }

  uploaded(task) {
    if (!SENDING.has(task.state)) return;
    task.state = "parsing";
    task.url = task.upload.url;
    task.sent = task.size;
    task.retry = null;
    task.speed = null;
    task.secondsLeft = null;
    this.emit(`${task.name}: uploaded, checking the APK.`);
    this.pump();
    this.poll(task);
  }

  // --- The network comes and goes ----------------------------------------------------------

  wentOffline() {
    for (const task of this.tasks) {
      if (!SENDING.has(task.state) || !task.upload) continue;
      task.upload.abort();
      task.state = "offline";
      task.retry = null;
      task.speed = null;
      task.secondsLeft = null;
    }
    this.emit("Offline: uploads wait for the connection.");
  }

  cameOnline() {
    let resumed = 0;
    for (const task of this.tasks) {
      if (task.state !== "offline") continue;
      task.state = "queued";
      resumed += 1;
    }
    if (resumed) this.emit("Back online: uploads continue.");
    this.pump();
  }

  // --- The user's buttons ------------------------------------------------------------------

  pause(id) {
    const task = this.find(id);
    if (!task || !PAUSABLE.has(task.state)) return;
    if (task.upload) task.upload.abort();
    task.state = "paused";
    task.retry = null;
    task.speed = null;
    task.secondsLeft = null;
    this.emit(`${task.name}: paused.`);
    this.pump();
  }

  resume(id) {
    const task = this.find(id);
    if (!task || !RESUMABLE.has(task.state)) return;
    if (task.state === "failed" && !task.canRetry) return;
    task.error = null;
    task.canRetry = false;
    if (!task.started || task.state === "offline") {
      task.state = "queued";
      this.emit(`${task.name}: queued.`);
      this.pump();
      return;
    }
    // Started and paused (or failed): the user asked, so it goes now, whatever the queue.
    this.restart(task);
  }

  cancel(id) {
    const task = this.find(id);
    // Once every byte is in (task.url), the upload is the server's: dismiss, not cancel.
    if (!task || task.url || !(PAUSABLE.has(task.state) || RESUMABLE.has(task.state))) return;
    const upload = task.upload;
    task.state = "cancelled";
    this.tasks = this.tasks.filter((t) => t !== task);
    this.emit(`${task.name}: cancelled.`);
    this.pump();
    if (upload && task.started) {
      // abort(true) deletes the upload on the server (tus termination) and forgets its URL; when
      // the server cannot be reached the URL is forgotten here, so the file starts afresh.
      const url = upload.url;
      return upload.abort(true).catch(() => this.forgetUrl(url));
    }
    return Promise.resolve();
  }

  dismiss(id) {
    const task = this.find(id);
    if (!task || !(FINISHED.has(task.state) || task.state === "parsing")) return;
    task.state = "dismissed"; // stops a poll under way
    this.tasks = this.tasks.filter((t) => t !== task);
    this.emit();
  }

  recheck(id) {
    const task = this.find(id);
    if (!task || !task.canRecheck) return;
    task.canRecheck = false;
    task.error = null;
    task.state = "parsing";
    this.emit(`${task.name}: checking the APK.`);
    this.poll(task);
  }

  async confirmSigner(id) {
    const task = this.find(id);
    if (!task || task.state !== "refused" || task.busy) return;
    task.busy = true;
    this.emit(`${task.name}: confirming the signer change.`);
    const answer = await this.request(task, "POST", "confirm-signer");
    task.busy = false;
    if (task.state !== "refused") return;
    if (answer.retry) {
      task.refusal = { ...task.refusal, problem: "The server could not be reached; try again." };
      this.emit(`${task.name}: ${task.refusal.problem}`);
      return;
    }
    if (answer.error) {
      task.refusal = { ...task.refusal, problem: answer.error.detail };
      this.emit(`${task.name}: ${answer.error.detail}`);
      return;
    }
    this.settle(task, answer.body);
    if (task.state === "parsing") this.poll(task);
  }

  // --- The parse result --------------------------------------------------------------------

  async request(task, method, suffix) {
    let response;
    try {
      response = await this.fetch(joinUrl(task.url, suffix), {
        method,
        credentials: "same-origin",
        headers: { Accept: "application/json", "X-CSRFToken": this.csrf },
      });
    } catch {
      return { retry: true };
    }
    const body = parseJson(await response.text().catch(() => ""));
    if (response.ok && body) return { body };
    if (isTransient(response.status) && response.status !== 409) return { retry: true };
    return { error: describeAnswer(response.status, body) };
  }

  async poll(task) {
    let delay = POLL_FIRST_MS;
    while (task.state === "parsing") {
      const answer = await this.request(task, "GET", "result");
      if (task.state !== "parsing") return;
      if (answer.error) {
        task.state = "failed";
        task.error = answer.error;
        task.canRecheck = true;
        this.emit(`${task.name}: ${answer.error.detail}`);
        return;
      }
      if (answer.body) this.settle(task, answer.body);
      if (task.state !== "parsing") return;
      await this.sleep(delay);
      delay = Math.min(delay * 2, POLL_MAX_MS);
    }
  }

  settle(task, body) {
    // "uploading": the server has not seen the last byte yet (an answer racing the final PATCH).
    if (body.state === "parsing" || body.state === "uploading") {
      task.state = "parsing";
      task.refusal = null;
      this.emit();
    } else if (body.state === "done" && body.release) {
      task.state = "done";
      task.release = body.release;
      task.refusal = null;
      const r = body.release;
      this.emit(`${task.name} uploaded: ${r.label || r.package} ${r.version_name || ""} (version code ${r.version_code}).`);
      this.events.dispatchEvent(new CustomEvent("apk-uploaded", { detail: body.release }));
    } else if (body.state === "refused") {
      task.state = "refused";
      task.refusal = describeAnswer(422, body);
      this.emit(`${task.name} refused: ${task.refusal.detail}`);
    } else {
      task.state = "failed";
      task.error = { detail: "The server's answer could not be read.", code: "", status: 200 };
      task.canRecheck = true;
      this.emit(`${task.name}: ${task.error.detail}`);
    }
  }

  // --- Uploads left unfinished by an earlier page (tus-js-client's URL storage) ------------

  async loadUnfinished() {
    let entries = [];
    try {
      entries = await this.urlStorage.findAllUploads();
    } catch {
      entries = [];
    }
    const inUse = new Set(this.tasks.map((t) => t.upload && t.upload.url).filter(Boolean));
    this.unfinished = newestFirst(entries)
      .filter((e) => typeof e.uploadUrl === "string" && e.uploadUrl.startsWith(this.endpoint) && !inUse.has(e.uploadUrl))
      .map((e) => ({
        key: e.urlStorageKey,
        url: e.uploadUrl,
        name: (e.metadata && e.metadata.filename) || "(unnamed)",
        channel: (e.metadata && e.metadata.channel) || "",
        size: Number(e.size) || 0,
        created: e.creationTime || "",
      }));
    this.emit();
  }

  /** Delete an unfinished upload on the server (when it can) and forget it here. */
  async discardUnfinished(key) {
    const entry = this.unfinished.find((u) => u.key === key);
    if (!entry) return;
    this.unfinished = this.unfinished.filter((u) => u.key !== key);
    this.emit(`${entry.name}: unfinished upload discarded.`);
    try {
      await this.Upload.terminate(entry.url, { headers: { "X-CSRFToken": this.csrf }, retryDelays: null });
    } catch {
      // Already gone, or not reachable: the server expires unfinished uploads on its own.
    }
    await this.urlStorage.removeUpload(key);
  }

  async forgetUrl(url) {
    if (!url) return;
    const entries = await this.urlStorage.findAllUploads();
    await Promise.all(entries.filter((e) => e.uploadUrl === url).map((e) => this.urlStorage.removeUpload(e.urlStorageKey)));
  }
}

function newestFirst(entries) {
  const time = (e) => Date.parse(e.creationTime || "") || 0;
  return [...entries].sort((a, b) => time(b) - time(a));
}
