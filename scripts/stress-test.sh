#!/bin/sh
# Run the whole suite on a loaded machine: ./test.sh while stress-ng keeps every core busy
# (`stress-ng --cpu N`, N = the number of online CPUs, 2 on the CI machines). The suite must
# pass as it does on a quiet machine: its energy checks compare with what the emulators
# actually wrote, not with their nominal power, so a late sample or a starved emulator thread
# is no reason to fail. stress-ng is stopped when test.sh ends; the exit status is test.sh's.
#
#   scripts/stress-test.sh [test.sh arguments, e.g. -k NAME]
#   STRESS_CPUS=4 STRESS_TIMEOUT=2h scripts/stress-test.sh
set -u
cd "$(dirname "$0")/.."
command -v stress-ng >/dev/null 2>&1 || {
	echo "stress-test: stress-ng is missing (apt-get install stress-ng, scripts/deps.d/stress.txt)" >&2
	exit 2
}
cpus=${STRESS_CPUS:-$(getconf _NPROCESSORS_ONLN)}
# The timeout only bounds a stress-ng left behind if this script is killed; normally it is
# stopped as soon as test.sh ends.
stress-ng --cpu "$cpus" --timeout "${STRESS_TIMEOUT:-3h}" --quiet &
stress_pid=$!
trap 'kill "$stress_pid" 2>/dev/null; wait "$stress_pid" 2>/dev/null' EXIT
trap 'exit 130' INT TERM
echo "stress-test: stress-ng --cpu $cpus (pid $stress_pid) while ./test.sh runs"
./test.sh "$@"
status=$?
echo "stress-test: test.sh exited $status under load"
exit "$status"
