#!/usr/bin/env bash
# Turns the JSON lines of mesa/scenarios.sh (one or more files, e.g. upstream and patched Mesa)
# into a Markdown table on stdout: per case and program, how the program ended, what it saw
# through the API, what Mesa printed, and what the GPU did with its commands.
#
#   mesa/table.sh RESULTS.jsonl [MORE.jsonl ...]
set -euo pipefail
[ $# -ge 1 ] || { echo "usage: mesa/table.sh RESULTS.jsonl ..." >&2; exit 1; }

jq -rs '
def program_name: {vk: "vk_submit (honeykrisp)", gl: "gl_robust (Gallium asahi)"}[.program];
def case_name: {
  "baseline": "no fault",
  "evil-faults": "evil neighbour: faults every 5 ms",
  "evil-hangs": "evil neighbour: hangs",
  "own-fault-mid": "own fault, mid-run (\(.fault_plan))",
  "own-hang-mid": "own hang, mid-run (\(.fault_plan))",
  "own-fault-last": "own fault, injected at its last submit (\(.fault_plan))",
  "stale-depth": "own bug: render passes into a depth buffer it freed (\(.program_args))"}[.case]
  // .case;
def ended:
  if .timed_out then "**hung**: still running after \(.timeout) s"
  elif .signal == 6 then "**aborted** (SIGABRT)"
  elif .signal then "killed by signal \(.signal)"
  elif .exit == 0 then "completed"
  else "exit \(.exit)" end;
def saw:
  .summary as $s
  | if $s == null then "nothing: no summary (it died first)"
    elif .program == "vk" then
      (if $s.device_lost then "`VK_ERROR_DEVICE_LOST` from `\($s.lost_at)`"
       elif $s.calls_failed > 0 then "`\($s.first_failed_call)` returned \($s.first_failed_result)"
       else "every call `VK_SUCCESS`, no `VK_ERROR_DEVICE_LOST`" end)
      + " (\($s.submissions) submissions, \($s.waits) waits)"
    else
      "reset status **\($s.reset_status)**"
      + (if $s.reset_status != "none" then " after `\($s.reset_seen_after)`" else "" end)
      + " (\($s.reset_polls) polls, \($s.frames) frames, \($s.finishes) `glFinish`)"
      + (if $s.gl_errors > 0 then ", \($s.gl_errors) GL errors" else "" end)
      + (if $s.new_context != "not tried" then ", new context: \($s.new_context)" else "" end)
    end;
# Mesa'"'"'s own lines, shortened: no program prefix, paths from the source root, no backticks.
def said:
  [.mesa_messages[] | select(test("^MESA-EGL: warning") | not)
   | sub("^[a-z_]+: \\.\\./mesa/"; "") | gsub("`"; "'"'"'") | "`\(.)`"]
  | if length == 0 then "" else join("<br>") end;
def gpu:
  .gpu as $g
  | "\($g.completed) completed, \($g.killed) killed, \($g.cancelled) cancelled";
def hex: [recurse(if . >= 16 then (. / 16 | floor) else empty end) | . % 16]
  | reverse | map("0123456789abcdef"[.:.+1]) | "0x" + join("");
# The firmware trace'"'"'s words for a fault, in the uAPI extension'"'"'s names.
def fault_words:
  capture("fault_type: (?<t>[0-9]+), unit: (?<u>[0-9]+), write: (?<w>[a-z]+), address: (?<a>[0-9]+)")
  | (.t | tonumber) as $t
  | (if $t == 3 then "" else
      (["none", "unmapped", "permission", "timeout", "injected", "firmware", "invalid"][$t])
      + (if $t == 1 or $t == 2 then (if .w == "true" then " write" else " read" end) else "" end)
      + (if .a != "0" then " at \(.a | tonumber | hex)" else "" end) + ", " end)
    + "unit " + (["unknown", "VDM", "CDM", "vertex", "fragment", "compute", "firmware"][.u | tonumber]);
def count($n; $what): if $n == 1 then "1 \($what)" else "\($n) \($what)s" end;
def faults:
  .gpu as $g
  | ([if $g.faults > 0 then count($g.faults; "fault") else empty end,
      if $g.timeouts > 0 then count($g.timeouts; "hang") + " (timed out)" else empty end]
     | join(", ")) as $n
  | if .evil != null then "neighbour: \($n)"
    elif ($g.faults + $g.timeouts) > 0 then
      "its own: \($n)"
      + ([$g.last_faults[]? | select(test("fault=Fault")) | fault_words] | unique
         | if length > 0 then " (" + join("; ") + ")" else "" end)
    else "none" end;
(map(.mesa) | unique) as $labels
| ($labels | length > 1) as $many
| (if $many then "| Mesa " else "" end)
  + "| case | program | how it ended | what the program saw | what Mesa printed | GPU: its commands | faults on the GPU |",
  (if $many then "| --- " else "" end) + "| --- | --- | --- | --- | --- | --- | --- |",
  (.[] | (if $many then "| \(.mesa) " else "" end)
    + "| \(case_name) | \(program_name) | \(ended) | \(saw) | \(said) | \(gpu) | \(faults) |")
' "$@"
