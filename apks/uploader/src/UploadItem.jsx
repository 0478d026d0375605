import { formatBytes, formatDuration, formatSpeed } from "./format.js";
import { ReleaseDetails } from "./ReleaseDetails.jsx";
import { FINISHED, PAUSABLE, RESUMABLE } from "./store.js";

const LABELS = {
  queued: "Queued",
  checking: "Starting",
  uploading: "Uploading",
  retrying: "Retrying",
  paused: "Paused",
  offline: "Offline",
  parsing: "Checking",
  done: "Done",
  refused: "Refused",
  failed: "Failed",
};
const BADGES = { done: "succeeded", refused: "rejected", failed: "failed", offline: "offline", paused: "offline" };

function percent(item) {
  return item.size ? Math.floor((item.sent * 100) / item.size) : 0;
}

function statusLine(item) {
  const amount = `${formatBytes(item.sent)} of ${formatBytes(item.size)} (${percent(item)}%)`;
  switch (item.state) {
    case "queued":
      return "Waiting for another upload to finish.";
    case "checking":
      return "Looking for an earlier upload of this file…";
    case "uploading": {
      const parts = [amount];
      if (item.speed) parts.push(formatSpeed(item.speed));
      if (item.secondsLeft != null && item.speed) parts.push(`${formatDuration(item.secondsLeft)} left`);
      return (item.resumed ? "Resumed: " : "") + parts.join(" · ");
    }
    case "retrying":
      return `${item.retry.detail} Retrying in ${formatDuration(item.retry.delayMs / 1000)} (attempt ${item.retry.attempt} of ${item.retry.of}).`;
    case "paused":
      return `Paused at ${amount}.`;
    case "offline":
      return `Offline at ${amount}: the upload goes on when the connection is back.`;
    case "parsing":
      return "Uploaded. Checking the APK…";
    case "done":
      return "Uploaded and checked.";
    default:
      return "";
  }
}

export function UploadItem({ item, store }) {
  const nameId = `${item.id}-name`;
  const sending = !FINISHED.has(item.state) && item.state !== "queued";
  const indeterminate = item.state === "checking" || item.state === "parsing";
  return (
    <li className={`upload upload-${item.state}`} aria-labelledby={nameId}>
      <div className="upload-head">
        <strong id={nameId}>{item.name}</strong>
        <span className="muted">
          {formatBytes(item.size)} · {item.channel}
        </span>
        <span className={`badge ${BADGES[item.state] || "running"}`}>{LABELS[item.state]}</span>
      </div>
      {sending &&
        (indeterminate ? (
          <progress aria-labelledby={nameId} />
        ) : (
          <progress aria-labelledby={nameId} max={item.size || 1} value={item.sent} />
        ))}
      {statusLine(item) && <p className="upload-status">{statusLine(item)}</p>}
      {item.state === "failed" && item.error && <p className="upload-error">{item.error.detail}</p>}
      {item.state === "refused" && item.refusal && (
        <div className="upload-refusal">
          <p>{item.refusal.detail}</p>
          {item.refusal.problem && <p className="upload-error">{item.refusal.problem}</p>}
        </div>
      )}
      {item.state === "done" && item.release && <ReleaseDetails release={item.release} />}
      <div className="upload-actions">
        {PAUSABLE.has(item.state) && (
          <button type="button" className="secondary" aria-label={`Pause ${item.name}`} onClick={() => store.pause(item.id)}>
            Pause
          </button>
        )}
        {(item.state === "paused" || item.state === "offline") && (
          <button type="button" aria-label={`Resume ${item.name}`} onClick={() => store.resume(item.id)}>
            Resume
          </button>
        )}
        {item.state === "failed" && item.canRetry && (
          <button type="button" aria-label={`Retry ${item.name}`} onClick={() => store.resume(item.id)}>
            Retry
          </button>
        )}
        {item.state === "failed" && item.canRecheck && (
          <button type="button" aria-label={`Check ${item.name} again`} onClick={() => store.recheck(item.id)}>
            Check again
          </button>
        )}
        {item.state === "refused" && item.refusal && item.refusal.code === "signer_changed" && (
          <button type="button" disabled={item.busy} aria-busy={item.busy ? "true" : undefined} onClick={() => store.confirmSigner(item.id)}>
            Confirm signer change
          </button>
        )}
        {(PAUSABLE.has(item.state) || item.state === "paused" || (item.state === "failed" && item.canRetry)) && (
          <button type="button" className="secondary outline" aria-label={`Cancel ${item.name}`} onClick={() => store.cancel(item.id)}>
            Cancel
          </button>
        )}
        {(item.state === "done" || item.state === "refused" || (item.state === "failed" && !item.canRetry)) && (
          <button type="button" className="secondary outline" aria-label={`Dismiss ${item.name}`} onClick={() => store.dismiss(item.id)}>
            Dismiss
          </button>
        )}
      </div>
    </li>
  );
}
