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
