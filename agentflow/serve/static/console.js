// The agentflow console: draw Mermaid graphs, follow a run's live stream. No framework.
"use strict";

const MARKS = {
  flow_started: "▶", flow_finished: "■", started: "→", completed: "✓", failed: "✗",
  retrying: "↻", handoff: "⇢", published: "✉", approval_waiting: "◇", approval_decided: "◆",
};

function describe(item) {
  const agent = item.agent || "";
  const data = item.data || {};
  if (item.kind === "tokens") return `  ${agent} │ ${item.text || ""}`;
  const mark = MARKS[item.kind] || "·";
  if (item.kind === "flow_started") return `${mark} flow ${data.flow} (${data.mode})`;
  if (item.kind === "flow_finished") {
    return `${mark} flow ${data.status}${data.error ? ": " + data.error : ""}`;
  }
  if (item.kind === "handoff") return `${mark} ${agent} hands off to ${data.to}`;
  const rest = Object.entries(data).filter(([key]) => !["step", "to"].includes(key));
  const extra = rest.length ? ": " + rest.map(([k, v]) => `${k}=${JSON.stringify(v)}`).join(", ") : "";
  return `${mark} ${agent} ${item.kind}${extra}`;
}

function follow(box) {
  // One SSE event per item, named by its kind (agentflow/serve/stream.py), then "end".
  const source = new EventSource(box.dataset.src);
  const add = (text) => { box.textContent += text + "\n"; box.scrollTop = box.scrollHeight; };
  const show = (message) => {
    const item = JSON.parse(message.data);
    const at = new Date(item.at).toISOString().slice(11, 23);
    add(`${String(item.offset).padStart(4)} ${at} ${describe(item)}`);
  };
  // The kinds this server's runs stream (models/stream.py's Kind), given by the page.
  for (const kind of box.dataset.kinds.split(" ")) source.addEventListener(kind, show);
  source.addEventListener("end", () => { source.close(); add("(the run has ended)"); });
  source.addEventListener("error", (message) => {
    if (!message.data) return;  // the connection dropped: the browser reconnects by itself
    source.close();
    add("(" + JSON.parse(message.data).detail + ")");
  });
}

document.addEventListener("DOMContentLoaded", () => {
  if (window.mermaid && document.querySelector("pre.mermaid")) {
    window.mermaid.initialize({ startOnLoad: false, securityLevel: "strict", theme: "neutral" });
    window.mermaid.run({ querySelector: "pre.mermaid" });
  }
  const box = document.getElementById("stream");
  if (box) follow(box);
});
