// tuneport ui: live job list, job actions, plan and the chat playground. No framework, no CDN.
"use strict";

const POLL_MS = 3000;

function token() {
  const meta = document.querySelector('meta[name="tuneport-token"]');
  let value = meta ? meta.content : "";
  if (!value) {
    value = sessionStorage.getItem("tuneport-token") || "";
  }
  if (!value) {
    value = window.prompt("Token printed when `tuneport ui` started:") || "";
    if (value) sessionStorage.setItem("tuneport-token", value);
  }
  return value;
}

async function post(url, body) {
  return fetch(url, {
    method: "POST",
    headers: { "Content-Type": "application/json", "X-Tuneport-Token": token() },
    body: JSON.stringify(body),
  });
}

async function problem(response) {
  try {
    const body = await response.json();
    return body.error + (body.hint ? " (" + body.hint + ")" : "");
  } catch (e) {
    return "HTTP " + response.status;
  }
}

function cell(text, cls) {
  const td = document.createElement("td");
  td.textContent = text;
  if (cls) td.className = cls;
  return td;
}

// --- jobs list: redraw the rows when the store changes -----------------------------------------
function jobRow(r) {
  const tr = document.createElement("tr");
  tr.dataset.job = r.id;
  const link = document.createElement("a");
  link.href = "/jobs/" + encodeURIComponent(r.id);
  link.textContent = r.id;
  const first = document.createElement("td");
  first.appendChild(link);
  const state = document.createElement("span");
  state.className = "state " + r.state;
  state.textContent = r.state;
  const stateCell = document.createElement("td");
  stateCell.appendChild(state);
  tr.append(first, cell(r.provider), cell(r.model, "id"), stateCell, cell(r.tuned_model, "id"),
    cell(r.estimate_tokens, "num"), cell(r.billed_tokens, "num"), cell(r.estimate_cost, "num"),
    cell(r.cost, "num"), cell(r.created), cell(r.updated));
  return tr;
}

function watchJobs() {
  const body = document.querySelector("#jobs tbody");
  let last = null;
  async function tick() {
    try {
      const response = await fetch("/api/jobs" + window.location.search);
      if (response.ok) {
        const data = await response.json();
        const signature = JSON.stringify(data.jobs.map((r) => [r.id, r.updated_at, r.state]));
        if (last !== null && signature !== last && data.jobs.length) {
          body.replaceChildren(...data.jobs.map(jobRow));
          document.getElementById("count").textContent =
            data.jobs.length + " job(s) shown, newest first.";
        }
        last = signature;
      }
    } catch (e) {
      document.getElementById("live").textContent = "live: the server stopped answering";
    }
    setTimeout(tick, POLL_MS);
  }
  tick();
}

// --- one job: reload when it changes, actions with confirmation ---------------------------------
function watchJob() {
  const head = document.querySelector("h1[data-job]");
  if (head.dataset.terminal !== "yes") {
    const id = head.dataset.job;
    setInterval(async () => {
      const response = await fetch("/api/jobs/" + encodeURIComponent(id));
      if (response.ok) {
        const data = await response.json();
        if (data.row.updated_at !== head.dataset.updated) window.location.reload();
      }
    }, POLL_MS);
  }
  for (const button of document.querySelectorAll("button.action")) {
    button.addEventListener("click", async () => {
      const action = button.dataset.action;
      const words = action === "cancel" ? "Cancel job " : "Delete the provider resources of ";
      if (!window.confirm(words + button.dataset.job + "?")) return;
      const out = document.getElementById("action-result");
      out.textContent = "working…";
      const response = await post(
        "/api/jobs/" + encodeURIComponent(button.dataset.job) + "/" + action, { confirm: true });
      if (!response.ok) {
        out.textContent = "refused: " + (await problem(response));
        return;
      }
      const data = await response.json();
      out.textContent = action === "cancel" ? "state: " + data.state
        : data.removed.length ? "deleted: " + data.removed.join(", ") : "nothing left to delete";
    });
  }
}

// --- plan -----------------------------------------------------------------------------------
function planPage() {
  const form = document.getElementById("plan-form");
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const status = document.getElementById("plan-status");
    const table = document.getElementById("plan");
    status.textContent = "counting and pricing…";
    const response = await post("/api/plan",
      { data: form.elements.data.value, method: form.elements.method.value });
    if (!response.ok) {
      status.textContent = await problem(response);
      table.hidden = true;
      return;
    }
    const data = await response.json();
    const money = (v) => (v === null || v === undefined ? "—" : "$" + Number(v).toFixed(2));
    const num = (v) => (v === null || v === undefined ? "—" : Number(v).toLocaleString("en"));
    table.querySelector("tbody").replaceChildren(...data.rows.map((r) => {
      const tr = document.createElement("tr");
      tr.append(cell(r.provider), cell(r.model, "id"), cell(r.valid ? "yes" : "no (" + r.errors + ")"),
        cell(num(r.examples), "num"), cell(num(r.tokens) + (r.exact ? "" : " ≈"), "num"),
        cell(num(r.epochs), "num"), cell(num(r.billed_tokens), "num"),
        cell(r.price_per_million_usd === null ? "—" : "$" + r.price_per_million_usd, "num"),
        cell(r.cost_unknown ? "unknown" : money(r.cost_usd), "num"),
        cell((r.price_as_of || "") + (r.unverified ? " *" : "")));
      return tr;
    }));
    table.hidden = false;
    status.textContent = data.rows.length + " provider × model row(s); * = unverified price";
  });
}

// --- chat playground: one prompt, several models, streamed side by side -------------------------
async function streamInto(target, prompt, box) {
  const response = await post("/api/chat", { target: target, prompt: prompt });
  if (!response.ok) {
    box.textContent = "error: " + (await problem(response));
    box.classList.add("error");
    return;
  }
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  box.textContent = "";
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    box.textContent += decoder.decode(value, { stream: true });
  }
  box.dataset.done = "yes";
}

function chatPage() {
  const form = document.getElementById("chat-form");
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const targets = form.elements.targets.value.split("\n").map((t) => t.trim()).filter(Boolean);
    const prompt = form.elements.prompt.value;
    const replies = document.getElementById("replies");
    replies.replaceChildren();
    for (const target of targets) {
      const column = document.createElement("section");
      column.className = "reply";
      const title = document.createElement("h3");
      title.textContent = target;
      const box = document.createElement("pre");
      box.className = "answer";
      box.dataset.target = target;
      box.textContent = "…";
      column.append(title, box);
      replies.appendChild(column);
      streamInto(target, prompt, box);
    }
  });
}

const PAGES = { jobs: watchJobs, job: watchJob, plan: planPage, chat: chatPage };
const start = PAGES[document.body.dataset.page];
if (start) start();
