/** How pipeline runs come to be (create.ts) and the signal a commit that made some fires (signal.ts). */
export * from "./create.ts";
export * from "./signal.ts";
