import type { Section } from "../api/client";

const SECTION_NAMES: Record<string, string> = {
  SECTION_READING: "Reading",
  SECTION_LISTENING: "Listening",
  SECTION_WRITING: "Writing",
  SECTION_SPEAKING: "Speaking",
};

export function sectionName(section: Section | null | undefined): string {
  return SECTION_NAMES[String(section ?? "")] ?? "Section";
}

export function taskTypeName(taskType: string | number | null | undefined): string {
  const name = String(taskType ?? "").replace(/^TASK_TYPE_/, "");
  if (name === "" || name === "UNSPECIFIED") return "Task";
  return name.charAt(0) + name.slice(1).toLowerCase().replaceAll("_", " ");
}
