import type { Section } from "../api/client";

const SECTION_NAMES: Record<string, string> = {
  SECTION_READING: "Reading",
  SECTION_LISTENING: "Listening",
  SECTION_WRITING: "Writing",
  SECTION_SPEAKING: "Speaking",
};

// The sections in the order the test takes them, which is the order a student reads them in too.
export const SECTIONS = ["SECTION_READING", "SECTION_LISTENING", "SECTION_WRITING", "SECTION_SPEAKING"] as const;

export function inTestOrder<T extends { section?: Section | null }>(rows: readonly T[]): T[] {
  const rank = (row: T) => (SECTIONS as readonly (Section | null | undefined)[]).indexOf(row.section);
  return [...rows].sort((a, b) => rank(a) - rank(b));
}

export function sectionName(section: Section | null | undefined): string {
  return SECTION_NAMES[String(section ?? "")] ?? "Section";
}

export function taskTypeName(taskType: string | number | null | undefined): string {
  const name = String(taskType ?? "").replace(/^TASK_TYPE_/, "");
  if (name === "" || name === "UNSPECIFIED") return "Task";
  return name.charAt(0) + name.slice(1).toLowerCase().replaceAll("_", " ");
}

/** A sitting's test in words: "Full test" or "Reading section". */
export function testName(sitting: { scope?: string | number | null; section?: Section | null }): string {
  return sitting.scope === "SESSION_SCOPE_SECTION" ? `${sectionName(sitting.section)} section` : "Full test";
}

export function when(time: string | null | undefined): string {
  return time ? new Date(time).toLocaleString() : "–";
}

/** "1 student", "3 students". */
export function count(n: number, noun: string): string {
  return `${n} ${noun}${n === 1 ? "" : "s"}`;
}
