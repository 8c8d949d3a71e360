// Playground and attention view. Plain browser JavaScript (no build step), served as-is.
const $ = (id) => document.getElementById(id);

async function api(path, body) {
  const res = await fetch(path, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  const json = await res.json();
  if (!res.ok) throw new Error(json.error?.message ?? res.statusText);
  return json;
}

function showTab() {
  const name = (location.hash || '#playground').slice(1);
  for (const s of document.querySelectorAll('.tab')) s.hidden = s.id !== `tab-${name}`;
  for (const a of document.querySelectorAll('nav a')) a.classList.toggle('active', a.dataset.tab === name);
  window.dispatchEvent(new CustomEvent('primer-tab', { detail: name }));
}
window.addEventListener('hashchange', showTab);
showTab();

let models = [];
fetch('/v1/models').then((r) => r.json()).then((j) => {
  models = j.data;
  $('models').textContent = models.map((m) => `${m.id} (${m.kind})`).join(' · ') || 'no model loaded';
});

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
    const res = await fetch('/v1/completions', {
      method: 'POST', headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        prompt, stream: true, max_tokens: +$('gen-max').value, temperature: +$('gen-temp').value,
        top_k: +$('gen-topk').value, top_p: +$('gen-topp').value,
      }),
    });
    if (!res.ok) throw new Error((await res.json()).error?.message ?? res.statusText);
    const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
    let buffer = '';
    let finish = null;
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buffer += value;
      let cut;
      while ((cut = buffer.indexOf('\n\n')) >= 0) {
        const line = buffer.slice(0, cut).replace(/^data: /, '');
        buffer = buffer.slice(cut + 2);
        if (line === '[DONE]') continue;
        const chunk = JSON.parse(line);
        if (chunk.error) throw new Error(chunk.error.message);
        out.textContent += chunk.choices[0].text;
        pieces++;
        finish = chunk.choices[0].finish_reason ?? finish;
      }
    }
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
