// A task's prompt as its author wrote it: lines of text, and lines starting with "- " as a list (an email task's
// points to cover), so that a screen reader announces them as a list too.
export function PromptText({ text, className = "prompt" }: { text: string | null | undefined; className?: string }) {
  const blocks: { bullets: boolean; lines: string[] }[] = [];
  for (const raw of (text ?? "").split("\n")) {
    const line = raw.trim();
    if (line === "") continue;
    const bullet = line.startsWith("- ");
    const last = blocks[blocks.length - 1];
    const content = bullet ? line.slice(2).trim() : line;
    if (last !== undefined && last.bullets && bullet) last.lines.push(content);
    else blocks.push({ bullets: bullet, lines: [content] });
  }
  return (
    <div className={className}>
      {blocks.map((block, index) =>
        block.bullets ? (
          <ul key={index}>
            {block.lines.map((line, item) => (
              <li key={item}>{line}</li>
            ))}
          </ul>
        ) : (
          block.lines.map((line, item) => <p key={`${String(index)}-${String(item)}`}>{line}</p>)
        ),
      )}
    </div>
  );
}
