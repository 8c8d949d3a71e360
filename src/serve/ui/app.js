// Playground, chat and attention view. Plain browser JavaScript (no build step), served as-is.
const $ = (id) => document.getElementById(id);

// With `primer serve --api-key`, /v1 needs "Authorization: Bearer <key>": asked once, kept in this browser.
async function authFetch(path, init = {}) {
  const withKey = () => {
    const key = localStorage.getItem('primer-api-key');
    return { ...init, headers: { ...(init.headers ?? {}), ...(key ? { authorization: `Bearer ${key}` } : {}) } };
  };
  let res = await fetch(path, withKey());
  if (res.status === 401) {
    const key = prompt('This server needs an API key');
    if (key) {
      localStorage.setItem('primer-api-key', key);
      res = await fetch(path, withKey());
    }
  }
  return res;
}
window.primerFetch = authFetch;

async function api(path, body) {
  const res = await authFetch(path, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  const json = await res.json();
  if (!res.ok) throw new Error(json.error?.message ?? res.statusText);
  return json;
}

function showTab() {
  let name = (location.hash || '#playground').slice(1);
  const link = document.querySelector(`nav a[data-tab="${name}"]`);
  if (!link || link.hidden) name = document.querySelector('nav a:not([hidden])')?.dataset.tab ?? 'playground';
  for (const s of document.querySelectorAll('.tab')) s.hidden = s.id !== `tab-${name}`;
  for (const a of document.querySelectorAll('nav a')) a.classList.toggle('active', a.dataset.tab === name);
  window.dispatchEvent(new CustomEvent('primer-tab', { detail: name }));
}
window.addEventListener('hashchange', showTab);
showTab();

// Only what the served models can answer is shown: each [data-needs] element names a model kind,
// "generate" (a causal LM: GPT-2 or Llama-family), "chat" (a model with a chat template) or "run"
// (a training run the dashboard can follow).
let models = [];
async function fitToServer() {
  const j = await (await authFetch('/v1/models')).json();
  models = j.data ?? [];
  $('models').textContent = models.map((m) => `${m.id} (${m.kind})`).join(' · ') || 'no model loaded';
  const run = (await authFetch('/v1/run/metrics?offset=0')).ok;
  const has = new Set(models.map((m) => m.kind));
  if (has.has('gpt2') || has.has('llama')) has.add('generate');
  if (models.some((m) => m.chat_template)) has.add('chat');
  if (run) has.add('run');
  for (const el of document.querySelectorAll('[data-needs]')) el.hidden = !has.has(el.dataset.needs);
  document.querySelector('nav a[data-tab="playground"]').hidden = !['generate', 'bert', 'classifier'].some((k) => has.has(k));
  const chat = models.find((m) => m.chat_template);
  if (chat) $('chat-model').textContent = `(${chat.id})`;
  document.body.dataset.ready = 'true';
  showTab();
}
fitToServer();

/** Reads a server-sent-event stream of JSON chunks; calls onChunk for each. */
async function readEvents(res, onChunk) {
  const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = '';
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += value;
    let cut;
    while ((cut = buffer.indexOf('\n\n')) >= 0) {
      const line = buffer.slice(0, cut).replace(/^data: /, '');
      buffer = buffer.slice(cut + 2);
      if (line === '[DONE]') continue;
      const chunk = JSON.parse(line);
      if (chunk.error) throw new Error(chunk.error.message);
      onChunk(chunk);
    }
  }
}

// Server-sent events over fetch: each "data: {...}" line is one completion chunk.
$('gen-run').addEventListener('click', async () => {
  const button = $('gen-run');
  const prompt = $('gen-prompt').value;
  const out = $('gen-output').querySelector('.completion');
  $('gen-output').querySelector('.prompt').textContent = prompt;
  out.textContent = '';
  $('gen-status').textContent = 'generating…';
  button.disabled = true;
  const t0 = performance.now();
  let pieces = 0;
  try {
    const res = await authFetch('/v1/completions', {
      method: 'POST', headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        prompt, stream: true, max_tokens: +$('gen-max').value, temperature: +$('gen-temp').value,
        top_k: +$('gen-topk').value, top_p: +$('gen-topp').value,
        // empty: the server draws one; a number makes the text reproducible
        ...($('gen-seed').value === '' ? {} : { seed: +$('gen-seed').value }),
      }),
    });
    if (!res.ok) throw new Error((await res.json()).error?.message ?? res.statusText);
    let finish = null;
    await readEvents(res, (chunk) => {
      out.textContent += chunk.choices[0].text;
      pieces++;
      finish = chunk.choices[0].finish_reason ?? finish;
    });
    const s = (performance.now() - t0) / 1000;
    $('gen-status').textContent = `done (${finish}) — ${pieces} chunks in ${s.toFixed(2)} s`;
  } catch (e) {
    $('gen-status').innerHTML = `<span class="error"></span>`;
    $('gen-status').firstChild.textContent = e.message;
  } finally {
    button.disabled = false;
  }
});

function bars(container, rows) {
  container.replaceChildren(...rows.map(({ label, p }) => {
    const row = document.createElement('div');
    row.className = 'bar';
    const name = document.createElement('span');
    name.textContent = label;
    const track = document.createElement('div');
    const fill = document.createElement('div');
    fill.className = 'fill';
    fill.style.width = `${(100 * p).toFixed(1)}%`;
    track.append(fill);
    const value = document.createElement('span');
    value.textContent = `${(100 * p).toFixed(1)}%`;
    row.append(name, track, value);
    return row;
  }));
}

function showError(container, e) {
  const span = document.createElement('span');
  span.className = 'error';
  span.textContent = e.message;
  container.replaceChildren(span);
}

$('mask-run').addEventListener('click', async () => {
  try {
    const { masks } = await api('/v1/fill-mask', { text: $('mask-text').value, top_k: 5 });
    bars($('mask-results'), masks[0].predictions.map((p) => ({ label: p.token, p: p.probability })));
  } catch (e) { showError($('mask-results'), e); }
});

$('cls-run').addEventListener('click', async () => {
  try {
    const { data } = await api('/v1/classify', { input: $('cls-text').value });
    bars($('cls-results'), data[0].scores.map((s) => ({ label: s.label, p: s.probability })));
  } catch (e) { showError($('cls-results'), e); }
});

// Attention heatmap: white (0) → blue (1), query rows top to bottom, keys left to right.
let maps = null;
function drawAttention() {
  if (!maps) return;
  const canvas = $('attn-canvas');
  const ctx = canvas.getContext('2d');
  const probs = maps.probs[+$('attn-layer').value][+$('attn-head').value];
  const n = maps.tokens.length;
  const margin = 90;
  const cell = Math.max(4, Math.floor((canvas.width - margin) / n));
  ctx.clearRect(0, 0, canvas.width, canvas.height);
  ctx.font = '10px sans-serif';
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < n; j++) {
      const p = probs[i][j];
      ctx.fillStyle = `rgb(${Math.round(255 - 218 * p)}, ${Math.round(255 - 156 * p)}, 255)`;
      ctx.fillRect(margin + j * cell, margin + i * cell, cell - 1, cell - 1);
    }
    ctx.fillStyle = '#333';
    ctx.fillText(maps.tokens[i].slice(0, 12), 2, margin + i * cell + cell * 0.7);
    ctx.save();
    ctx.translate(margin + i * cell + cell * 0.7, margin - 4);
    ctx.rotate(-Math.PI / 2);
    ctx.fillText(maps.tokens[i].slice(0, 12), 0, 0);
    ctx.restore();
  }
}
$('attn-run').addEventListener('click', async () => {
  try {
    $('attn-status').textContent = 'computing…';
    maps = await api('/v1/attention', { text: $('attn-text').value });
    const fill = (sel, k) => { const v = sel.value; sel.replaceChildren(...Array.from({ length: k }, (_, i) => new Option(String(i), String(i)))); sel.value = v && +v < k ? v : '0'; };
    fill($('attn-layer'), maps.layers);
    fill($('attn-head'), maps.heads);
    $('attn-status').textContent = `${maps.tokens.length} tokens, ${maps.layers} layers × ${maps.heads} heads (model ${maps.model})`;
    drawAttention();
  } catch (e) { showError($('attn-status'), e); }
});
$('attn-layer').addEventListener('change', drawAttention);
$('attn-head').addEventListener('change', drawAttention);

// Chat: the conversation so far goes to /v1/chat/completions (the model's chat template) and the
// reply streams into the log.
let history = [];
function addMessage(role, text) {
  const div = document.createElement('div');
  div.className = `msg ${role}`;
  div.textContent = text;
  $('chat-log').append(div);
  return div;
}
$('chat-send').addEventListener('click', async () => {
  const text = $('chat-input').value.trim();
  const model = models.find((m) => m.chat_template);
  if (!text || !model) return;
  $('chat-input').value = '';
  history.push({ role: 'user', content: text });
  addMessage('user', text);
  const out = addMessage('assistant', '');
  $('chat-send').disabled = true;
  $('chat-status').textContent = 'thinking…';
  try {
    const res = await authFetch('/v1/chat/completions', {
      method: 'POST', headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: model.id, messages: history, stream: true, max_tokens: +$('chat-max').value, temperature: +$('chat-temp').value }),
    });
    if (!res.ok) throw new Error((await res.json()).error?.message ?? res.statusText);
    let finish = null;
    await readEvents(res, (chunk) => {
      out.textContent += chunk.choices[0].delta.content ?? '';
      finish = chunk.choices[0].finish_reason ?? finish;
    });
    history.push({ role: 'assistant', content: out.textContent.trim() });
    $('chat-status').textContent = `done (${finish})`;
  } catch (e) {
    showError($('chat-status'), e);
  } finally {
    $('chat-send').disabled = false;
  }
});
$('chat-reset').addEventListener('click', () => {
  history = [];
  $('chat-log').replaceChildren();
  $('chat-status').textContent = '';
});
