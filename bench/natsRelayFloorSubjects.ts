/** The NATS relay floor's subjects and roles (bench/natsRelayFloor.ts, bench/natsRelayFloorMember.ts). */
export type FloorRole = "leader" | "voter" | "learner";

export const floorSubjects = {
  propose: "floor.propose",
  accept: "floor.accept",
  vote: "floor.vote",
  commit: "floor.commit",
} as const;
