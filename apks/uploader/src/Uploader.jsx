import { useEffect, useId, useState, useSyncExternalStore } from "react";

import { formatBytes } from "./format.js";
import { UploadItem } from "./UploadItem.jsx";

const ACCEPT = ".apk,application/vnd.android.package-archive";

function hasFiles(event) {
  return Array.from(event.dataTransfer ? event.dataTransfer.types : []).includes("Files");
}

function startedAt(created) {
  const time = Date.parse(created);
  return Number.isNaN(time) ? "" : new Date(time).toLocaleString();
}

export function Uploader({ store, channels, supported }) {
  const snapshot = useSyncExternalStore(store.subscribe, store.getSnapshot);
  const [channel, setChannel] = useState(channels[0] || "");
  const [notes, setNotes] = useState("");
  const [dragging, setDragging] = useState(false);
  const id = useId();

  // A file dropped next to the zone would make the browser open it, leaving the page (and every
  // upload under way): such drops are swallowed.
  useEffect(() => {
    const swallow = (event) => {
      if (hasFiles(event)) event.preventDefault();
    };
    document.addEventListener("dragover", swallow);
    document.addEventListener("drop", swallow);
    return () => {
      document.removeEventListener("dragover", swallow);
      document.removeEventListener("drop", swallow);
    };
  }, []);

  const add = (fileList) => {
    const files = Array.from(fileList || []);
    if (files.length) store.addFiles(files, { channel, notes });
  };

  const onDragOver = (event) => {
    if (!hasFiles(event)) return;
    event.preventDefault();
    event.dataTransfer.dropEffect = "copy";
    setDragging(true);
  };
  const onDragLeave = (event) => {
    if (!event.currentTarget.contains(event.relatedTarget)) setDragging(false);
  };
  const onDrop = (event) => {
    event.preventDefault();
    setDragging(false);
    add(event.dataTransfer.files);
  };

  if (!supported) {
    return <p className="upload-error">This browser cannot upload files here (it lacks XMLHttpRequest or Blob slicing).</p>;
  }

  return (
    // The page gives the heading (templates/apks/index.html); this is its content.
    <div className="apk-uploader">
      <div className="uploader-options">
        <label htmlFor={`${id}-channel`}>
          Channel
          <select id={`${id}-channel`} name="channel" value={channel} onChange={(e) => setChannel(e.target.value)}>
            {channels.map((c) => (
              <option key={c} value={c}>
                {c}
              </option>
            ))}
          </select>
        </label>
        <label htmlFor={`${id}-notes`}>
          Release notes <span className="muted">(optional)</span>
          <textarea id={`${id}-notes`} name="notes" rows={2} maxLength={1000} value={notes} onChange={(e) => setNotes(e.target.value)} />
        </label>
      </div>
      <div
        className={dragging ? "drop-zone dragging" : "drop-zone"}
        onDragEnter={onDragOver}
        onDragOver={onDragOver}
        onDragLeave={onDragLeave}
        onDrop={onDrop}
      >
        <label htmlFor={`${id}-files`}>Drop APK files here, or choose them</label>
        <input
          id={`${id}-files`}
          type="file"
          name="apks"
          multiple
          accept={ACCEPT}
          aria-describedby={`${id}-hint`}
          onChange={(e) => {
            add(e.target.files);
            e.target.value = ""; // the same file can be chosen again (to resume it)
          }}
        />
        <small id={`${id}-hint`}>
          Each file goes to the channel and notes chosen when it is added. An interrupted upload resumes when the same
          file is chosen again, even after a reload.
        </small>
      </div>
      <p className="visually-hidden" role="status" aria-live="polite" aria-atomic="true">
        {snapshot.announcement}
      </p>
      {snapshot.unfinished.length > 0 && (
        <div className="unfinished">
          <h3>Unfinished uploads</h3>
          <p className="muted">Choose the same file again to resume it where it stopped.</p>
          <ul>
            {snapshot.unfinished.map((u) => (
              <li key={u.key}>
                <span>
                  <strong>{u.name}</strong> <span className="muted">{[formatBytes(u.size), u.channel, startedAt(u.created) && `started ${startedAt(u.created)}`].filter(Boolean).join(" · ")}</span>
                </span>
                <button type="button" className="secondary outline" aria-label={`Discard ${u.name}`} onClick={() => store.discardUnfinished(u.key)}>
                  Discard
                </button>
              </li>
            ))}
          </ul>
        </div>
      )}
      {snapshot.items.length > 0 && (
        <ul className="upload-list" aria-label="Uploads">
          {snapshot.items.map((item) => (
            <UploadItem key={item.id} item={item} store={store} />
          ))}
        </ul>
      )}
    </div>
  );
}
