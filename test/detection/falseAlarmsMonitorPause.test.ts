import { falseAlarmSoak } from "./soakDuration.ts";

// One fault per file (so ava runs the five in parallel); see soakDuration.ts.
falseAlarmSoak("monitor-pause-3s", 102);
