// Whole-system fuzz in CI, part 2 of 4 (see systemFuzzRange.ts: seed ranges, options, known failures).
import test from "ava";
import { registerFuzzPart } from "./systemFuzzRange.ts";

registerFuzzPart(test, 2);
