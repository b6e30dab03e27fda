// The web chat page: renders the channel the server sends (messages built from the bot core's message model),
// sends what the user types, uploads dropped pictures and offers completion hints from the core's options table.
// Plain browser JavaScript, served as is: no build step. Wire shapes: src/bot/web/wire.ts.

const $ = (id) => document.getElementById(id);
const log = $('log');
const input = $('input');
const hintsBox = $('hints');
const pendingBox = $('pending');

const state = { me: null, socket: null, hints: null, messages: new Map(), pendingFiles: [], pendingControl: null, replyTo: null, hintItems: [], hintIndex: -1 };

// ---- identity: a random id kept in this browser; the name is only for display ----
function identity() {
  let id = localStorage.getItem('sdbot.userId');
  if (!id) {
    id = `web-${crypto.getRandomValues(new Uint32Array(2)).join('')}`;
    localStorage.setItem('sdbot.userId', id);
  }
  let secret = localStorage.getItem('sdbot.secret');
  if (!secret) {
    secret = [...crypto.getRandomValues(new Uint8Array(24))].map((b) => b.toString(16).padStart(2, '0')).join('');
    localStorage.setItem('sdbot.secret', secret);
  }
  const name = localStorage.getItem('sdbot.name') || `guest-${id.slice(-4)}`;
  return { id, name, secret };
}

$('rename').addEventListener('click', () => {
  const name = prompt('Your name in this chat', identity().name);
  if (name && name.trim()) {
    localStorage.setItem('sdbot.name', name.trim());
    state.socket?.close();
  }
});

// ---- connection ----
function connect() {
  const { id, name, secret } = identity();
  const ws = new WebSocket(`${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/ws`);
  state.socket = ws;
  ws.addEventListener('open', () => ws.send(JSON.stringify({ type: 'hello', userId: id, name, secret })));
  ws.addEventListener('message', (ev) => onEvent(JSON.parse(ev.data)));
  ws.addEventListener('close', (ev) => {
    if (ev.code === 4001) {
      // Another browser holds this id (a copied profile?): start over with a new identity.
      for (const k of ['sdbot.userId', 'sdbot.secret']) localStorage.removeItem(k);
    }
    setStatus('offline — reconnecting…', false);
    setTimeout(connect, 1000);
  });
}

function setStatus(text, online) {
  $('status').textContent = text;
  $('status').classList.toggle('online', online);
}

function onEvent(e) {
  if (e.type === 'welcome') {
    state.me = e.you;
    $('me').textContent = e.you.name;
    setStatus('online', true);
    state.messages.clear();
    log.replaceChildren();
    for (const m of e.history) upsert(m);
    scrollDown(true);
    loadHints();
  } else if (e.type === 'message') {
    const atBottom = log.scrollHeight - log.scrollTop - log.clientHeight < 80;
    upsert(e.message);
    scrollDown(atBottom);
  } else if (e.type === 'remove') {
    state.messages.delete(e.id);
    document.querySelector(`[data-id="${CSS.escape(e.id)}"]`)?.remove();
  }
}

function scrollDown(force) {
  if (force) log.scrollTop = log.scrollHeight;
}

// ---- rendering ----
function el(tag, props = {}, children = []) {
  const node = Object.assign(document.createElement(tag), props);
  for (const c of [].concat(children)) if (c !== null && c !== undefined) node.append(c);
  return node;
}

/** The core's text convention: `code` and **bold**; everything else is plain text. */
function richText(text) {
  const frag = document.createDocumentFragment();
  for (const part of text.split(/(`[^`]+`|\*\*[^*]+\*\*)/g)) {
    if (!part) continue;
    if (part.startsWith('`') && part.endsWith('`') && part.length > 1) frag.append(el('code', { textContent: part.slice(1, -1) }));
    else if (part.startsWith('**') && part.endsWith('**') && part.length > 3) frag.append(el('b', { textContent: part.slice(2, -2) }));
    else frag.append(document.createTextNode(part));
  }
  return frag;
}

function render(m) {
  const kind = m.author.bot ? (m.kind || 'info') : 'user';
  const node = el('div', { className: `msg ${m.author.bot ? 'bot' : 'user'} ${kind}` });
  node.dataset.id = m.id;
  node.dataset.kind = kind;
  node.dataset.final = String(m.final);
  const meta = el('div', { className: 'meta' }, [
    el('b', { textContent: m.author.name }),
    m.author.bot ? el('span', { className: 'tag', textContent: 'BOT' }) : null,
    new Date(m.ts).toLocaleTimeString(),
    m.ephemeral ? el('span', { className: 'ephemeral', textContent: ' · only you can see this' }) : null,
  ]);
  const body = el('div', { className: 'body' });
  if (m.replyTo) {
    const target = state.messages.get(m.replyTo);
    const what = target ? (target.title || target.text || '(picture)') : '(an earlier message)';
    const ref = el('div', { className: 'replyref', textContent: `↪ ${target ? target.author.name : ''}: ${what.slice(0, 80)}` });
    ref.addEventListener('click', () => document.querySelector(`[data-id="${CSS.escape(m.replyTo)}"]`)?.scrollIntoView({ behavior: 'smooth', block: 'center' }));
    body.append(ref);
  }
  body.append(meta);
  if (m.text) body.append(el('div', { className: 'line' }, richText(m.text)));
  if (m.title) body.append(el('div', { className: 'title', textContent: m.title }));
  for (const line of m.lines) body.append(el('div', { className: 'line' }, richText(line)));
  if (m.images.length) {
    const imgs = el('div', { className: 'images' });
    for (const img of m.images) {
      const i = el('img', { src: img.url, alt: img.name, title: `${img.name} — drop a picture here to remix, click to enlarge` });
      i.addEventListener('click', () => enlarge(img.url));
      imgs.append(i);
    }
    body.append(imgs);
  }
  for (const row of m.buttons) {
    const r = el('div', { className: 'row' });
    for (const b of row) {
      const button = el('button', { className: b.style, textContent: [b.emoji, b.label].filter(Boolean).join(' ') });
      button.dataset.button = b.id;
      button.setAttribute('aria-label', b.label || b.emoji || b.id);
      button.addEventListener('click', () => {
        send({ type: 'click', messageId: m.id, buttonId: b.id });
        button.disabled = true;
        setTimeout(() => (button.disabled = false), 1500);
      });
      r.append(button);
    }
    body.append(r);
  }
  node.append(el('div', { className: 'avatar', textContent: m.author.bot ? '✦' : m.author.name.slice(0, 1).toUpperCase() }), body);
  makeDropTarget(node, m);
  return node;
}

function upsert(m) {
  state.messages.set(m.id, m);
  const fresh = render(m);
  const old = document.querySelector(`[data-id="${CSS.escape(m.id)}"]`);
  if (old) old.replaceWith(fresh);
  else log.append(fresh);
}

function enlarge(url) {
  const d = el('dialog', {}, el('img', { src: url }));
  d.addEventListener('click', () => d.close());
  d.addEventListener('close', () => d.remove());
  document.body.append(d);
  d.showModal();
}

// ---- sending ----
function send(event) {
  if (state.socket?.readyState === WebSocket.OPEN) state.socket.send(JSON.stringify(event));
}

$('form').addEventListener('submit', (ev) => {
  ev.preventDefault();
  const text = input.value.trim();
  if (!text && state.pendingFiles.length === 0 && !state.pendingControl) return;
  send({
    type: 'send', text, files: state.pendingFiles.map((f) => f.id),
    ...(state.pendingControl ? { control: state.pendingControl.id } : {}), ...(state.replyTo ? { replyTo: state.replyTo } : {}),
  });
  input.value = '';
  state.pendingFiles = [];
  state.pendingControl = null;
  state.replyTo = null;
  renderPending();
  hideHints();
});

// ---- pictures: the file button, dropping on the box, dropping on a message ----
async function upload(file) {
  const res = await fetch(`/upload?name=${encodeURIComponent(file.name || 'image')}`, { method: 'POST', body: file, headers: { 'content-type': file.type || 'application/octet-stream' } });
  const body = await res.json().catch(() => ({ error: `upload failed (HTTP ${res.status})` }));
  if (!res.ok) throw new Error(body.error || `upload failed (HTTP ${res.status})`);
  return { id: body.url.slice('/files/'.length), url: body.url, name: body.name };
}

async function addFiles(files) {
  for (const f of [...files].filter((f) => f.type.startsWith('image/') || /\.(png|jpe?g|webp|gif|avif)$/i.test(f.name))) {
    try {
      state.pendingFiles.push(await upload(f));
    } catch (err) {
      alert(err.message);
    }
  }
  state.pendingFiles = state.pendingFiles.slice(-2);
  renderPending();
  input.focus();
}

/** The control-image slot holds one picture (ControlNet); a new one replaces it. */
async function setControl(files) {
  const f = [...files].find((f) => f.type.startsWith('image/') || /\.(png|jpe?g|webp|gif|avif)$/i.test(f.name));
  if (!f) return;
  try {
    state.pendingControl = await upload(f);
  } catch (err) {
    alert(err.message);
  }
  renderPending();
  input.focus();
}

function renderPending() {
  const chips = [];
  if (state.replyTo) {
    const target = state.messages.get(state.replyTo);
    const chip = el('span', { className: 'chip' }, [`↪ remixing ${target ? `“${(target.title || target.text || 'picture').slice(0, 40)}”` : 'a message'}`]);
    const x = el('button', { textContent: '✕', title: 'Cancel' });
    x.addEventListener('click', () => { state.replyTo = null; renderPending(); });
    chip.append(x);
    chips.push(chip);
  }
  state.pendingFiles.forEach((f, i) => {
    const role = state.replyTo ? 'mask' : i === 0 ? 'image' : 'mask';
    const chip = el('span', { className: 'chip' }, [el('img', { src: f.url }), `${role}: ${f.name}`]);
    const x = el('button', { textContent: '✕', title: 'Remove' });
    x.addEventListener('click', () => { state.pendingFiles.splice(i, 1); renderPending(); });
    chip.append(x);
    chips.push(chip);
  });
  if (state.pendingControl) {
    const chip = el('span', { className: 'chip' }, [el('img', { src: state.pendingControl.url }), `control: ${state.pendingControl.name}`]);
    const x = el('button', { textContent: '✕', title: 'Remove' });
    x.addEventListener('click', () => { state.pendingControl = null; renderPending(); });
    chip.append(x);
    chips.push(chip);
  }
  pendingBox.replaceChildren(...chips);
  pendingBox.hidden = chips.length === 0;
}

$('file').addEventListener('change', (ev) => { void addFiles(ev.target.files); ev.target.value = ''; });
$('control-file').addEventListener('change', (ev) => { void setControl(ev.target.files); ev.target.value = ''; });

const composer = $('composer');
composer.addEventListener('dragover', (ev) => { ev.preventDefault(); composer.classList.add('drop'); });
composer.addEventListener('dragleave', () => composer.classList.remove('drop'));
composer.addEventListener('drop', (ev) => { ev.preventDefault(); composer.classList.remove('drop'); void addFiles(ev.dataTransfer.files); });

/** Dropping a picture on a message with a picture remixes it (the dropped one is the inpaint mask); on any other message it starts an img2img reply. */
function makeDropTarget(node, m) {
  node.addEventListener('dragover', (ev) => { ev.preventDefault(); node.classList.add('drop'); });
  node.addEventListener('dragleave', () => node.classList.remove('drop'));
  node.addEventListener('drop', (ev) => {
    ev.preventDefault();
    ev.stopPropagation();
    node.classList.remove('drop');
    state.replyTo = m.images.length ? m.id : null;
    if (!input.value.trim()) input.value = m.title || m.text || '';
    void addFiles(ev.dataTransfer.files);
  });
}

// ---- completion hints from the options table ----
async function loadHints() {
  try {
    state.hints = await (await fetch('/api/hints')).json();
    const notice = $('notice');
    notice.hidden = !state.hints.notice;
    notice.textContent = state.hints.notice || '';
  } catch { /* hints are a convenience; the chat works without them */ }
}
input.addEventListener('focus', () => void loadHints());

function optionForFlag(flag) {
  return state.hints?.options.find((o) => o.flags.includes(flag.toLowerCase()));
}

function describe(o) {
  const range = o.min !== undefined ? ` ${o.min}–${o.max}` : '';
  const dflt = o.defaultText ? ` (default: ${o.defaultText})` : '';
  const fam = o.families ? ` [${o.families.join('/').toUpperCase()} only]` : '';
  return `${o.help}${range ? ` ·${range}` : ''}${dflt}${fam}`;
}

/** Suggestions for the text before the caret: [{insert, label, help}] or an info line. */
function suggest(before) {
  const h = state.hints;
  if (!h) return [];
  const cmd = /^\/[\w-]*$/.exec(before);
  if (cmd) return h.commands.filter((c) => c.name.startsWith(before.toLowerCase())).map((c) => ({ replace: before, insert: `${c.name} `, label: c.name, help: c.help }));
  if (/^\/sd-admin\s/i.test(before)) {
    const words = before.slice('/sd-admin'.length).trimStart().split(/\s+/);
    const last = words[words.length - 1] ?? '';
    if (words.length === 1) return h.admin.filter((a) => a.name.startsWith(last)).map((a) => ({ replace: last, insert: `${a.name} `, label: a.name, help: a.usage }));
    if (words.length === 2 && ['load', 'unload'].includes(words[0])) return h.models.filter((id) => id.startsWith(last)).map((id) => ({ replace: last, insert: `${id} `, label: id, help: 'model' }));
    if (words.length === 2 && words[0] === 'default') return ['server', 'channel'].filter((s) => s.startsWith(last)).map((s) => ({ replace: last, insert: `${s} `, label: s, help: 'scope' }));
    return [];
  }
  if (!/^\/imagine\s/i.test(before) && !(state.replyTo || state.pendingFiles.length || state.pendingControl)) return [];
  const flag = /(?:^|\s)((?:--|—)[\w-]*)$/.exec(before);
  if (flag) {
    const typed = flag[1].replace(/^—/, '--').toLowerCase();
    return h.options.flatMap((o) => o.flags.filter((f) => f.startsWith(typed)).slice(0, 1).map((f) => ({
      replace: flag[1], insert: `${f} `, label: `${f}${o.example ? ` ${o.example}` : ''}`, help: describe(o),
    })));
  }
  const value = /(--[\w-]+)\s+([^\s]*)$/.exec(before);
  if (value) {
    const o = optionForFlag(value[1]);
    if (!o || o.type === 'text') return [];
    const typed = value[2].toLowerCase();
    const values = o.type === 'model' ? h.models : o.type === 'aspect' ? h.aspects : o.choices ?? [];
    const items = values.filter((v) => v.toLowerCase().startsWith(typed)).map((v) => ({ replace: value[2], insert: `${v} `, label: v, help: o.help }));
    return items.length ? items : [{ info: true, label: `${value[1]} ${o.example ?? ''}`.trim(), help: describe(o) }];
  }
  return [];
}

function showHints() {
  const before = input.value.slice(0, input.selectionStart ?? input.value.length);
  state.hintItems = suggest(before).slice(0, 30);
  state.hintIndex = state.hintItems.some((i) => !i.info) ? 0 : -1;
  if (!state.hintItems.length) return hideHints();
  hintsBox.replaceChildren(...state.hintItems.map((item, n) => {
    const node = el('div', { className: `hint${item.info ? ' info' : ''}${n === state.hintIndex ? ' active' : ''}` }, [el('span', { className: 'k', textContent: item.label }), el('span', { className: 'h', textContent: item.help })]);
    node.setAttribute('role', 'option');
    if (!item.info) node.addEventListener('mousedown', (ev) => { ev.preventDefault(); accept(item); });
    return node;
  }));
  hintsBox.hidden = false;
}

function hideHints() {
  hintsBox.hidden = true;
  state.hintItems = [];
  state.hintIndex = -1;
}

function accept(item) {
  const caret = input.selectionStart ?? input.value.length;
  const start = caret - item.replace.length;
  input.value = input.value.slice(0, start) + item.insert + input.value.slice(caret);
  const pos = start + item.insert.length;
  input.setSelectionRange(pos, pos);
  input.focus();
  showHints();
}

input.addEventListener('input', showHints);
input.addEventListener('blur', () => setTimeout(hideHints, 100));
input.addEventListener('keydown', (ev) => {
  if (hintsBox.hidden || state.hintIndex < 0) return;
  if (ev.key === 'ArrowDown' || ev.key === 'ArrowUp') {
    ev.preventDefault();
    const n = state.hintItems.length;
    state.hintIndex = (state.hintIndex + (ev.key === 'ArrowDown' ? 1 : n - 1)) % n;
    [...hintsBox.children].forEach((c, i) => c.classList.toggle('active', i === state.hintIndex));
  } else if (ev.key === 'Tab') {
    ev.preventDefault();
    accept(state.hintItems[state.hintIndex]);
  } else if (ev.key === 'Escape') {
    hideHints();
  }
});

connect();
