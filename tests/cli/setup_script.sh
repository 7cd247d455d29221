#!/usr/bin/env bash
# scripts/setup.sh installs chromium only when asked (--browser or HARP_SETUP_BROWSER=1): the plain
# build / perplexity job needs no browser; CI asks for it explicitly (.ci/run).
set -u
. "$(dirname "$0")/lib.bash"
S="$(dirname "$0")/../../scripts/setup.sh"
fail=0
plain=$(HARP_SETUP_BROWSER= bash "$S" --list)
check default_no_chromium '! grep -qx chromium <<< "$plain" && grep -qx libopenblas-dev <<< "$plain"'
check flag_adds_chromium  'bash "$S" --list --browser | grep -qx chromium'
check env_adds_chromium   'HARP_SETUP_BROWSER=1 bash "$S" --list | grep -qx chromium'
bash "$S" --bogus > /dev/null 2>&1
check bad_argument_exit_2 '[ $? -eq 2 ]'
check ci_keeps_browser_test 'grep -q "scripts/setup.sh --browser" "$(dirname "$0")/../../.ci/run"'
exit $fail
