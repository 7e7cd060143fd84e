#!/usr/bin/env bash
# Rebuilds ../cornerstone3d.min.js, ../VERSION and ../THIRD_PARTY_LICENSES.txt from the npm packages pinned in
# package-lock.json. Needs Node 18+ and the npm registry; the platform itself never needs Node.
set -euo pipefail
cd "$(dirname "$0")"
npm ci --no-audit --no-fund --ignore-scripts
npx esbuild entry.mjs --bundle --format=esm --minify --target=es2020 --legal-comments=none \
  --alias:xmlbuilder2=./xmlbuilder2-stub.mjs --metafile=meta.json --outfile=../cornerstone3d.min.js
node licenses.mjs
version() { node -p "require('./node_modules/$1/package.json').version"; }
{
  echo "@cornerstonejs/core $(version @cornerstonejs/core)"
  echo "bundled with esbuild $(version esbuild) from build/entry.mjs (see README.md)"
} > ../VERSION
rm -rf meta.json node_modules
sha256sum ../cornerstone3d.min.js
