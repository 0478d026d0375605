// Builds src/main.jsx into one minified, self-contained IIFE (no eval, no inline style, no source
// map), byte-for-byte the same on every machine for the same lockfile: `make uploader-check`
// compares it with the committed static/apks/uploader.js.
//   node build.mjs <outfile>
import { dirname } from "node:path";
import { fileURLToPath } from "node:url";

import * as esbuild from "esbuild";

const outfile = process.argv[2];
if (!outfile) {
  console.error("usage: node build.mjs <outfile>");
  process.exit(2);
}

await esbuild.build({
  absWorkingDir: dirname(fileURLToPath(import.meta.url)),
  entryPoints: ["src/main.jsx"],
  outfile,
  bundle: true,
  minify: true,
  format: "iife",
  platform: "browser",
  target: ["es2020", "chrome100", "firefox100", "safari15"],
  jsx: "automatic",
  define: { "process.env.NODE_ENV": '"production"' },
  legalComments: "eof",
  sourcemap: false,
  charset: "utf8",
  banner: { js: "/* MDM APK uploader: built from apks/uploader/src by `make uploader`; do not edit. */" },
  logLevel: "warning",
});
