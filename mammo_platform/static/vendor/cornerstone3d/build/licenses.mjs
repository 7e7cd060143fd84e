// Writes ../THIRD_PARTY_LICENSES.txt: the licence of every npm package that has code in the bundle, read from the
// esbuild metafile (which lists each input file and the bytes it contributes to the output).
import { readFileSync, readdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";

const meta = JSON.parse(readFileSync("meta.json", "utf8"));
const output = Object.values(meta.outputs)[0];
const bytesByPackageDir = new Map();
for (const [input, info] of Object.entries(output.inputs)) {
  const at = input.lastIndexOf("node_modules/");
  if (at < 0 || !info.bytesInOutput) continue;
  const parts = input.slice(at + "node_modules/".length).split("/");
  const name = parts[0].startsWith("@") ? `${parts[0]}/${parts[1]}` : parts[0];
  const dir = input.slice(0, at) + "node_modules/" + name;
  bytesByPackageDir.set(dir, (bytesByPackageDir.get(dir) || 0) + info.bytesInOutput);
}
const sections = [];
for (const [dir, bytes] of [...bytesByPackageDir].sort()) {
  const pkg = JSON.parse(readFileSync(join(dir, "package.json"), "utf8"));
  const licenceFile = readdirSync(dir).find((name) => /^(licen[cs]e|copying)(\.|-|$)/i.test(name));
  const text = licenceFile
    ? readFileSync(join(dir, licenceFile), "utf8").trim()
    : `(the npm package ships no licence file; its package.json says ${pkg.license}` +
      (pkg.name.startsWith("@cornerstonejs/") ? "; Cornerstone3D's MIT licence text is in LICENSE beside the bundle)" : ")");
  sections.push(`${pkg.name} ${pkg.version} (${pkg.license}), ${bytes} bytes in the bundle\n\n${text}`);
}
const header = "Licences of the npm packages bundled into cornerstone3d.min.js (written by build/licenses.mjs).";
writeFileSync("../THIRD_PARTY_LICENSES.txt", [header, ...sections].join(`\n\n${"=".repeat(100)}\n\n`) + "\n");
console.log(`${sections.length} packages: ${[...bytesByPackageDir.keys()].map((d) => d.split("node_modules/").pop()).join(", ")}`);
