// Copies the front-end libraries installed by `npm ci` into static/vendor/ (git-ignored), where
// Django's staticfiles finds them; pages never load anything from a CDN.
import { cpSync, existsSync, mkdirSync, rmSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const modules = join(root, "node_modules");
const vendor = join(root, "static", "vendor");

// [source under node_modules/, destination under static/vendor/]. Source maps are copied along
// with the files that name them: ManifestStaticFilesStorage (production collectstatic) follows
// sourceMappingURL comments and fails when the map is missing.
const files = [
  ["htmx.org/dist/htmx.min.js", "htmx/htmx.min.js"],
  ["htmx.org/LICENSE", "htmx/LICENSE"],
  ["sortablejs/Sortable.min.js", "sortablejs/Sortable.min.js"],
  ["sortablejs/LICENSE", "sortablejs/LICENSE"],
  ["chart.js/dist/chart.umd.min.js", "chartjs/chart.umd.min.js"],
  ["chart.js/dist/chart.umd.min.js.map", "chartjs/chart.umd.min.js.map"],
  ["chart.js/LICENSE.md", "chartjs/LICENSE.md"],
  ["@picocss/pico/css/pico.min.css", "pico/pico.min.css"],
  ["@picocss/pico/LICENSE.md", "pico/LICENSE.md"],
];

const missing = files.filter(([source]) => !existsSync(join(modules, source)));
if (missing.length) {
  console.error(`Missing from node_modules/ (run \`npm ci\` first): ${missing.map(([s]) => s).join(", ")}`);
  process.exit(1);
}

// Start from an empty directory so a file dropped from the list does not linger.
rmSync(vendor, { recursive: true, force: true });
for (const [source, destination] of files) {
  const target = join(vendor, destination);
  mkdirSync(dirname(target), { recursive: true });
  cpSync(join(modules, source), target);
}
console.log(`Copied ${files.length} files to static/vendor/`);
