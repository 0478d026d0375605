import { safeHref } from "./api.js";
import { formatBytes } from "./format.js";

export function ReleaseDetails({ release }) {
  const href = release.url ? safeHref(release.url, window.location.href) : null;
  const rows = [
    ["App", release.label],
    ["Package", <code>{release.package}</code>],
    ["Version", `${release.version_name || "—"} (code ${release.version_code})`],
    ["Channel", release.channel],
    ["Minimum Android API", release.min_sdk],
    ["Size", formatBytes(release.size)],
    ["SHA-256", <code className="wrap">{release.sha256}</code>],
    ["Signer SHA-256", <code className="wrap">{release.signer_sha256}</code>],
  ];
  return (
    <div className="release-details">
      <dl>
        {rows
          .filter(([, value]) => value !== undefined && value !== null && value !== "")
          .map(([term, value]) => (
            <div key={term}>
              <dt>{term}</dt>
              <dd>{value}</dd>
            </div>
          ))}
      </dl>
      {href && <a href={href}>Open the release</a>}
    </div>
  );
}
