// songqueue web page: submit a song, watch its place in the queue, play and download it.
// Plain browser JavaScript, no build step. It speaks the ACE-Step era A API that every client
// can use: POST /v1/music/generate (multipart), GET /v1/jobs/{id}, POST /v1/jobs/{id}/cancel,
// GET /v1/audio. The API key and this browser's job list live in localStorage.
"use strict";

const KEY_STORE = "songqueue.apiKey";
const HISTORY_STORE = "songqueue.jobs";
const POLL_MS = 700; // between status polls of active jobs
const HEALTH_MS = 5000; // between /health checks
const MAX_HISTORY = 50; // jobs remembered by this browser
const FINISHED = new Set(["succeeded", "failed"]);

const $ = (selector, root = document) => root.querySelector(selector);
const views = new Map(); // job_id -> <li>
let history = loadHistory();

// --- key, history, fetch -----------------------------------------------------------------

function apiKey() {
  return localStorage.getItem(KEY_STORE) || "";
}

function authHeaders() {
  const key = apiKey();
  return key ? { Authorization: "Bearer " + key } : {};
}

// <audio src> and download links cannot send headers: the key rides in ?ai_token=.
function withToken(url) {
  const key = apiKey();
  if (!key) return url;
  return url + (url.includes("?") ? "&" : "?") + "ai_token=" + encodeURIComponent(key);
}

function loadHistory() {
  try {
    const list = JSON.parse(localStorage.getItem(HISTORY_STORE) || "[]");
    return Array.isArray(list) ? list : [];
  } catch {
    return [];
  }
}

function saveHistory() {
  history = history.slice(0, MAX_HISTORY);
  localStorage.setItem(HISTORY_STORE, JSON.stringify(history));
}

async function api(path, options = {}) {
  const headers = { ...authHeaders(), ...(options.headers || {}) };
  const res = await fetch(path, { ...options, headers });
  let body = null;
  try {
    body = await res.json();
  } catch {
    body = null;
  }
  if (!res.ok) {
    const detail = body && (body.detail || body.error);
    const error = new Error(
      typeof detail === "string" ? detail : `${res.status} ${res.statusText}`,
    );
    error.status = res.status;
    throw error;
  }
  return body;
}

// --- formatting ---------------------------------------------------------------------------

function seconds(value) {
  if (value === null || value === undefined) return "";
  const s = Math.max(0, Math.round(value));
  if (s < 60) return `${s} s`;
  const m = Math.floor(s / 60);
  return `${m} min ${s % 60} s`;
}

function when(ms) {
  return new Date(ms).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
}

function fileName(url, jobId, index) {
  const match = /path=([^&]+)/.exec(url);
  const path = match ? decodeURIComponent(match[1]) : url;
  const ext = (path.split(".").pop() || "mp3").toLowerCase();
  return `songqueue-${jobId.slice(0, 8)}-${index + 1}.${ext}`;
}

// --- job cards ----------------------------------------------------------------------------

function entry(jobId) {
  return history.find((item) => item.job_id === jobId);
}

function cardFor(item) {
  let li = views.get(item.job_id);
  if (li) return li;
  li = $("#job-template").content.firstElementChild.cloneNode(true);
  li.dataset.jobId = item.job_id;
  $(".caption", li).textContent = item.caption || "(no caption)";
  $(".cancel", li).addEventListener("click", () => cancel(item.job_id));
  $(".remove", li).addEventListener("click", () => forget(item.job_id));
  views.set(item.job_id, li);
  return li;
}

function renderList() {
  const list = $("#jobs");
  list.replaceChildren(...history.map(cardFor));
  $("#empty").hidden = history.length > 0;
  for (const item of history) render(item);
}

function render(item) {
  const li = cardFor(item);
  const job = item.job || { status: "queued", queue_position: item.queue_position };
  const state = job.cancelled ? "cancelled" : item.gone ? "expired" : job.status;
  li.dataset.status = state;
  const pill = $(".status", li);
  pill.textContent = state;
  pill.className = `status pill ${state}`;
  const facts = [item.task_type, item.duration ? `${item.duration} s` : "", when(item.created)];
  $(".meta", li).textContent = facts.filter(Boolean).join(" · ") + ` · ${item.job_id}`;

  const done = FINISHED.has(job.status) || item.gone;
  $(".cancel", li).hidden = done;
  const progress = job.status === "succeeded" ? 1 : job.progress || 0;
  const bar = $(".bar", li);
  bar.style.width = `${Math.round(progress * 100)}%`;
  $(".progress", li).dataset.progress = progress.toFixed(3);
  $(".progress", li).classList.toggle("active", job.status === "running");
  $(".detail", li).textContent = detailText(job, item);
  $(".error", li).textContent = job.status === "failed" && !job.cancelled ? job.error || "" : "";
  if (job.status === "succeeded" && job.result && !li.dataset.players) {
    li.dataset.players = "1";
    renderResults(li, item.job_id, job.result);
  }
}

function detailText(job, item) {
  if (item.gone) return "This job is no longer on the server.";
  if (job.status === "queued") {
    const parts = [`Position ${job.queue_position || "?"} in the queue`];
    if (job.eta_start_seconds != null) parts.push(`starts in ~${seconds(job.eta_start_seconds)}`);
    if (job.eta_seconds != null) parts.push(`ready in ~${seconds(job.eta_seconds)}`);
    if (job.eta_seconds == null) parts.push("ETA once a worker has timings");
    return parts.join(" · ");
  }
  if (job.status === "running") {
    const parts = [job.stage || "running"];
    if (job.steps_total) parts.push(`step ${job.steps_done}/${job.steps_total}`);
    parts.push(`${Math.round((job.progress || 0) * 100)}%`);
    if (job.eta_seconds != null) parts.push(`~${seconds(job.eta_seconds)} left`);
    return parts.join(" · ");
  }
  if (job.status === "succeeded") {
    const took = job.finished_at && job.started_at ? job.finished_at - job.started_at : null;
    const waited = job.started_at && job.created_at ? job.started_at - job.created_at : null;
    const parts = [];
    if (took != null) parts.push(`generated in ${seconds(took)}`);
    if (waited != null) parts.push(`waited ${seconds(waited)}`);
    if (job.result && job.result.seed_value) parts.push(`seed ${job.result.seed_value}`);
    return parts.join(" · ");
  }
  return job.cancelled ? "Cancelled." : "";
}

function renderResults(li, jobId, result) {
  const list = $(".results", li);
  (result.audio_paths || []).forEach((url, index) => {
    const row = document.createElement("li");
    row.className = "result";
    const canvas = document.createElement("canvas");
    canvas.className = "waveform";
    canvas.title = "Click to seek";
    const audio = document.createElement("audio");
    audio.controls = true;
    audio.preload = "metadata";
    audio.src = withToken(url);
    const link = document.createElement("a");
    link.className = "download";
    link.href = withToken(url);
    link.download = fileName(url, jobId, index);
    link.textContent = "Download";
    const controls = document.createElement("div");
    controls.className = "controls";
    controls.append(audio, link);
    row.append(canvas, controls);
    list.append(row);
    drawWaveform(canvas, url, audio).catch((err) => {
      canvas.dataset.error = String(err);
    });
  });
}

// --- waveform -----------------------------------------------------------------------------

// Decode the audio with WebAudio and draw min/max peaks per pixel column; the played part is
// drawn in the accent colour as the <audio> element plays, and a click seeks.
async function drawWaveform(canvas, url, audio) {
  const res = await fetch(url, { headers: authHeaders() });
  if (!res.ok) throw new Error(`audio ${res.status}`);
  const bytes = await res.arrayBuffer();
  const decoder = new OfflineAudioContext(1, 1, 44100); // used only to decode
  const buffer = await decoder.decodeAudioData(bytes);
  const width = Math.max(100, Math.floor(canvas.clientWidth || 600));
  const ratio = window.devicePixelRatio || 1;
  canvas.width = width * ratio;
  canvas.height = 64 * ratio;
  const peaks = columnPeaks(buffer, width);
  const paint = () => {
    const played = audio.duration ? audio.currentTime / audio.duration : 0;
    paintPeaks(canvas, peaks, played, ratio);
  };
  paint();
  audio.addEventListener("timeupdate", paint);
  audio.addEventListener("seeked", paint);
  canvas.addEventListener("click", (event) => {
    const rect = canvas.getBoundingClientRect();
    const at = (event.clientX - rect.left) / rect.width;
    if (Number.isFinite(buffer.duration)) audio.currentTime = at * buffer.duration;
    paint();
  });
  canvas.dataset.duration = buffer.duration.toFixed(3);
  canvas.dataset.peak = Math.max(...peaks.map(([lo, hi]) => Math.max(-lo, hi))).toFixed(4);
  canvas.dataset.decoded = "1";
}

function columnPeaks(buffer, columns) {
  const channels = [];
  for (let c = 0; c < buffer.numberOfChannels; c++) channels.push(buffer.getChannelData(c));
  const per = Math.max(1, Math.floor(buffer.length / columns));
  const peaks = [];
  for (let x = 0; x < columns; x++) {
    let lo = 0;
    let hi = 0;
    const start = x * per;
    const end = Math.min(buffer.length, start + per);
    for (const data of channels) {
      for (let i = start; i < end; i++) {
        const v = data[i];
        if (v < lo) lo = v;
        if (v > hi) hi = v;
      }
    }
    peaks.push([lo, hi]);
  }
  return peaks;
}

function paintPeaks(canvas, peaks, played, ratio) {
  const ctx = canvas.getContext("2d");
  const { width, height } = canvas;
  const style = getComputedStyle(document.documentElement);
  const base = style.getPropertyValue("--wave").trim() || "#7b8aa8";
  const accent = style.getPropertyValue("--accent").trim() || "#f0a24a";
  ctx.clearRect(0, 0, width, height);
  const mid = height / 2;
  const playedX = played * peaks.length;
  peaks.forEach(([lo, hi], x) => {
    ctx.fillStyle = x < playedX ? accent : base;
    const top = mid - Math.max(hi, 0.01) * mid;
    const bottom = mid - Math.min(lo, -0.01) * mid;
    ctx.fillRect(x * ratio, top, Math.max(1, ratio * 0.8), bottom - top);
  });
}

// --- actions ------------------------------------------------------------------------------

async function submit(event) {
  event.preventDefault();
  const form = event.target;
  const errorBox = $("#form-error");
  errorBox.textContent = "";
  const data = new FormData(form);
  const task = data.get("task_type");
  for (const [name, value] of [...data.entries()]) {
    const emptyFile = value instanceof File && !value.size;
    if (value === "" || emptyFile) data.delete(name);
  }
  if (task === "text2music") data.delete("src_audio");
  if (task !== "repaint") ["repainting_start", "repainting_end"].forEach((n) => data.delete(n));
  if (task !== "cover") data.delete("audio_cover_strength");
  if (data.has("seed")) data.set("use_random_seed", "false");
  const button = $("#submit");
  button.disabled = true;
  try {
    const job = await api("/v1/music/generate", { method: "POST", body: data });
    history.unshift({
      job_id: job.job_id,
      caption: (data.get("caption") || "").toString(),
      task_type: task,
      duration: data.get("audio_duration"),
      created: Date.now(),
      queue_position: job.queue_position,
      job: { status: job.status, queue_position: job.queue_position },
    });
    saveHistory();
    renderList();
    poll(job.job_id);
  } catch (err) {
    errorBox.textContent = err.message;
  } finally {
    button.disabled = false;
  }
}

async function poll(jobId) {
  const item = entry(jobId);
  if (!item) return;
  try {
    item.job = await api(`/v1/jobs/${encodeURIComponent(jobId)}`);
    item.gone = false;
  } catch (err) {
    if (err.status === 404) item.gone = true;
    else {
      const why = err.status ? err.message : `cannot reach the server (${err.message})`;
      $(".detail", cardFor(item)).textContent = `Status unavailable: ${why}`;
      return;
    }
  }
  saveHistory();
  render(item);
}

async function cancel(jobId) {
  const item = entry(jobId);
  if (!item) return;
  try {
    item.job = await api(`/v1/jobs/${encodeURIComponent(jobId)}/cancel`, { method: "POST" });
    saveHistory();
    render(item);
  } catch (err) {
    $(".error", cardFor(item)).textContent = err.message;
  }
}

function forget(jobId) {
  history = history.filter((item) => item.job_id !== jobId);
  views.delete(jobId);
  saveHistory();
  renderList();
}

async function pollActive() {
  const active = history.filter((item) => !item.gone && !FINISHED.has(item.job?.status));
  await Promise.all(active.map((item) => poll(item.job_id)));
  setTimeout(pollActive, POLL_MS);
}

async function checkHealth() {
  const pill = $("#server-status");
  try {
    const body = await api("/health");
    const data = body.data || {};
    pill.textContent = data.models_initialized
      ? `ready · ${data.loaded_model || "engine"}`
      : "no worker running";
    pill.className = `pill ${data.models_initialized ? "ok" : "warn"}`;
  } catch {
    pill.textContent = "server unreachable";
    pill.className = "pill bad";
  }
  setTimeout(checkHealth, HEALTH_MS);
}

function showTaskFields() {
  const task = $("#generate").elements.task_type.value;
  $("#source-fields").hidden = task === "text2music";
  for (const el of document.querySelectorAll("#source-fields .repaint")) {
    el.hidden = task !== "repaint";
  }
  for (const el of document.querySelectorAll("#source-fields .cover")) {
    el.hidden = task !== "cover";
  }
}

function start() {
  const key = $("#api-key");
  key.value = apiKey();
  key.addEventListener("change", () => {
    localStorage.setItem(KEY_STORE, key.value.trim());
    history.forEach((item) => poll(item.job_id));
  });
  $("#generate").addEventListener("submit", submit);
  $("#generate").elements.task_type.addEventListener("change", showTaskFields);
  $("#clear-history").addEventListener("click", () => {
    history = [];
    views.clear();
    saveHistory();
    renderList();
  });
  showTaskFields();
  renderList();
  history.filter((item) => FINISHED.has(item.job?.status)).forEach((item) => poll(item.job_id));
  pollActive();
  checkHealth();
}

start();
