import test from "ava";
import type { PaxosMessage } from "../../machines/paxos/messages.ts";
import {
  createProposalClient,
  stepProposalClient,
  type ProposalClientConfig,
  type ProposalClientInput,
  type ProposalClientState,
  type ProposalClientStep,
} from "../../machines/paxos/proposalClient.ts";

interface Cmd {
  readonly id: string;
}

const config: ProposalClientConfig = { controllerIds: ["c1", "c2", "c3"], maxOutstandingProposals: 2, maxProposeAttempts: 3, retryAfterMs: 100, maxRetryDelayMs: 150 };

function run(inputs: ProposalClientInput<Cmd>[], state: ProposalClientState<Cmd> = createProposalClient<Cmd>("h1", config)): ProposalClientStep<Cmd>[] {
  const steps: ProposalClientStep<Cmd>[] = [];
  for (const input of inputs) {
    const step = stepProposalClient(state, input);
    steps.push(step);
    state = step.state;
  }
  return steps;
}

const submit = (id: string, nowMs = 0): ProposalClientInput<Cmd> => ({ type: "submit", command: { id }, nowMs });
const refusal = (from: string, commandId: string, leaderHint: string, refusal: "not-leader" | "overloaded" = "not-leader"): ProposalClientInput<Cmd> => ({
  type: "message",
  message: { type: "paxos.propose-reply", from, to: "h1", commandId, refusal, leaderHint } satisfies PaxosMessage<Cmd>,
  nowMs: 5,
});
const targets = (step: ProposalClientStep<Cmd>): string[] => step.send.map((message) => message.to);

test("a proposal goes to the believed leader, follows a redirect, and reports the slot its node applied it at", (t) => {
  const steps = run([
    { type: "leader-hint", leaderId: "c2" },
    submit("x"),
    refusal("c2", "x", "c3"),
    { type: "applied", applied: [{ slot: 7, commandId: "x", outcome: { kind: "committed" } }], nowMs: 20 },
  ]);
  t.deepEqual(targets(steps[1]!), ["c2"]);
  t.deepEqual(targets(steps[2]!), ["c3"]);
  t.deepEqual(steps[3]!.outcomes, [{ commandId: "x", kind: "committed", slot: 7 }]);
  t.is(steps[3]!.state.outstanding.size, 0);
});

test("a rejection and a duplicate report the first application's outcome and slot", (t) => {
  const steps = run([
    submit("x"),
    submit("y"),
    {
      type: "applied",
      applied: [
        { slot: 3, commandId: "x", outcome: { kind: "rejected", reason: "unknown host h9" } },
        { slot: 9, commandId: "y", outcome: { kind: "duplicate", firstSlot: 4, first: { kind: "committed" } } },
        { slot: 9, commandId: "not-mine", outcome: { kind: "committed" } },
      ],
      nowMs: 1,
    },
  ]);
  t.deepEqual(steps[2]!.outcomes, [
    { commandId: "x", kind: "rejected", slot: 3, reason: "unknown host h9" },
    { commandId: "y", kind: "committed", slot: 4 },
  ]);
});

test("silence is retried with backoff at another controller, and after the last attempt the client gives up saying so", (t) => {
  const [first, early, second, third, gaveUp] = run([submit("x", 0), { type: "tick", nowMs: 99 }, { type: "tick", nowMs: 100 }, { type: "tick", nowMs: 250 }, { type: "tick", nowMs: 400 }]);
  t.deepEqual(targets(first!), ["c1"]);
  t.deepEqual(early!.send, []);
  t.deepEqual(targets(second!), ["c2"]);
  t.deepEqual(targets(third!), ["c3"], "retry delays double up to maxRetryDelayMs");
  t.deepEqual(gaveUp!.send, []);
  t.deepEqual(gaveUp!.outcomes, [{ commandId: "x", kind: "no-outcome", reason: "no outcome after 3 attempts; it may still be applied" }]);
  t.is(gaveUp!.state.outstanding.size, 0);
});

test("redirects between two nodes naming each other are bounded per attempt", (t) => {
  const steps = run([submit("x"), refusal("c1", "x", "c2"), refusal("c2", "x", "c1"), refusal("c1", "x", "c2")]);
  t.deepEqual(targets(steps[1]!), ["c2"]);
  t.deepEqual(targets(steps[2]!), ["c1"]);
  t.deepEqual(steps[3]!.send, [], "the third redirect waits for the timed retry");
  // An overloaded leader is not left at once either.
  t.deepEqual(run([submit("y"), refusal("c1", "y", "c1", "overloaded")])[1]!.send, []);
});

test("outstanding proposals are bounded and a repeated submission of the same id is not sent twice", (t) => {
  const steps = run([submit("a"), submit("a"), submit("b"), submit("c")]);
  t.deepEqual(steps[1]!.send, []);
  t.deepEqual(steps[3]!.outcomes, [{ commandId: "c", kind: "no-outcome", reason: "more than 2 proposals outstanding; not sent" }]);
});

test("a newly hinted leader gets the proposals waiting on another controller at once, without repeating itself", (t) => {
  const steps = run([
    { type: "leader-hint", leaderId: "c1" },
    submit("x"),
    submit("y"),
    // c1 died without a word; a commit from c3 names the new leader.
    { type: "leader-hint", leaderId: "c3" },
    { type: "leader-hint", leaderId: "c3" },
    refusal("c3", "x", "c2"),
    { type: "leader-hint", leaderId: "c1" },
    { type: "leader-hint", leaderId: "c3" },
  ]);
  t.deepEqual(targets(steps[1]!), ["c1"]);
  t.deepEqual(targets(steps[3]!), ["c3", "c3"]);
  t.is(steps[3]!.state.outstanding.get("x")!.retryAtMs, steps[2]!.state.outstanding.get("x")!.retryAtMs, "the timed retry stays where it was");
  t.deepEqual(steps[4]!.send, [], "the same hint again sends nothing");
  t.deepEqual(targets(steps[5]!), ["c2"], "a refusal still redirects");
  t.deepEqual(targets(steps[6]!), ["c1"], "only y: x has used its redirects for this attempt");
  t.deepEqual(steps[7]!.send, [], "bounded: y has used its redirects too");
});

test("a proposal refused as not leading by a controller before it leads is resent to it as soon as its leadership is hinted", (t) => {
  const steps = run([
    submit("x"),
    // c1 is still a candidate: it refuses, naming no leader.
    refusal("c1", "x", ""),
    { type: "leader-hint", leaderId: "c1" },
  ]);
  t.deepEqual(targets(steps[0]!), ["c1"]);
  t.deepEqual(steps[1]!.send, [], "no better target known: the timed retry stands");
  t.deepEqual(targets(steps[2]!), ["c1"], "c1 refused it before it led; now it leads, it gets it again");
  t.is(steps[2]!.state.outstanding.get("x")!.target, "c1");
});

test("a proposal sent to a controller before it led is resent when it leads even if the refusal never came, but one sent to it as leader is not", (t) => {
  const steps = run([
    // x goes to c1 in rotation (no leader known); c1 refuses, the refusal is lost.
    submit("x"),
    { type: "leader-hint", leaderId: "c1" },
    submit("y"),
    // An overloaded leader's refusal makes the client forget the hint, not the leader its proposals are with.
    refusal("c1", "y", "c1", "overloaded"),
    { type: "leader-hint", leaderId: "c1" },
  ]);
  t.deepEqual(targets(steps[1]!), ["c1"], "x again, now that c1 leads");
  t.deepEqual(targets(steps[2]!), ["c1"]);
  t.is(steps[3]!.state.leaderHint, "");
  t.deepEqual(steps[4]!.send, [], "x and y went to c1 while it led: nothing to resend");
});

test("a timed retry goes to the known leader, and to every other controller when the leader had the proposal and said nothing", (t) => {
  const steps = run([
    { type: "leader-hint", leaderId: "c2" },
    submit("x"),
    { type: "tick", nowMs: 100 },
    // The other controller knows a newer leader: followed at once.
    refusal("c1", "x", "c3"),
  ]);
  t.deepEqual(targets(steps[1]!), ["c2"]);
  t.deepEqual(targets(steps[2]!), ["c2", "c1", "c3"], "the leader is not avoided; c1 and c3 are asked too in case the hint is stale");
  // Only the other controllers' copies ask to be relayed to the leader (in case only our way to it is cut): all of
  // them, since which of them still reaches the leader is unknown (whole-system fuzz seed 660240).
  t.deepEqual(steps[2]!.send.map((message) => (message.type === "paxos.propose" ? message.relay ?? false : null)), [false, true, true]);
  t.deepEqual(steps[1]!.send.map((message) => (message.type === "paxos.propose" ? message.relay ?? false : null)), [false], "a first attempt is never relayed");
  t.deepEqual(targets(steps[3]!), ["c3"]);
  t.is(steps[3]!.state.leaderHint, "c3");
  // The other controller naming the leader already asked tells nothing: no resend, the hint stands.
  const quiet = run([{ type: "leader-hint", leaderId: "c2" }, submit("y"), { type: "tick", nowMs: 100 }, refusal("c1", "y", "c2")]);
  t.deepEqual(quiet[3]!.send, []);
  t.is(quiet[3]!.state.leaderHint, "c2");
});

test("a resend to a newly hinted leader is retried after the first backoff, not the one the proposal had reached", (t) => {
  const longBackoff: ProposalClientConfig = { ...config, maxProposeAttempts: 6, maxRetryDelayMs: 1_000 };
  const steps = run(
    [
      submit("x", 0),
      { type: "tick", nowMs: 100 },
      { type: "tick", nowMs: 300 },
      // Attempt 3 went to c3 with its retry due at 700; c2 is elected and the resend to it is lost.
      { type: "leader-hint", leaderId: "c2" },
      { type: "tick", nowMs: 310 },
      { type: "tick", nowMs: 409 },
      { type: "tick", nowMs: 410 },
    ],
    createProposalClient<Cmd>("h1", longBackoff),
  );
  t.deepEqual(targets(steps[2]!), ["c3"]);
  t.is(steps[2]!.state.outstanding.get("x")!.retryAtMs, 700);
  t.deepEqual(targets(steps[3]!), ["c2"]);
  t.is(steps[4]!.state.outstanding.get("x")!.retryAtMs, 410, "one retryAfterMs after the tick that saw the resend");
  t.deepEqual(steps[5]!.send, []);
  t.deepEqual(targets(steps[6]!)[0], "c2");
  t.is(steps[6]!.state.outstanding.get("x")!.attempts, 4);
});

test("a leader the client does not list: the refusing controller is asked again with the relay mark, a bounded number of times", (t) => {
  const two: ProposalClientConfig = { ...config, controllerIds: ["c1", "c2"] };
  const steps = run([submit("x"), refusal("c1", "x", "c3"), refusal("c1", "x", "c3"), refusal("c1", "x", "c3")], createProposalClient<Cmd>("h1", two));
  t.deepEqual(steps[0]!.send, [{ type: "paxos.propose", from: "h1", to: "c1", command: { id: "x" } }]);
  t.deepEqual(steps[1]!.send, [{ type: "paxos.propose", from: "h1", to: "c1", command: { id: "x" }, relay: true }], "c1 passes it on to c3, which this client cannot address");
  t.is(steps[2]!.send.length, 1);
  t.deepEqual(steps[3]!.send, [], `at most ${2} relays per attempt`);
  // A listed leader is followed as before, without the mark.
  const listed = run([submit("y"), refusal("c1", "y", "c2")], createProposalClient<Cmd>("h1", two));
  t.deepEqual(listed[1]!.send, [{ type: "paxos.propose", from: "h1", to: "c2", command: { id: "y" } }]);
});
