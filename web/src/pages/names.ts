import type { Section } from "../api/client";

const SECTION_NAMES: Record<string, string> = {
  SECTION_READING: "Reading",
  SECTION_LISTENING: "Listening",
  SECTION_WRITING: "Writing",
  SECTION_SPEAKING: "Speaking",
};

export function sectionName(section: Section | undefined): string {
  return SECTION_NAMES[section ?? ""] ?? "Section";
}
