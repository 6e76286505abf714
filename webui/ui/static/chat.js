// The Chat tab's page script: Gradio runs it once as the js_on_load of the tools component
// (webui/ui/chat_tab.py), with `element` (that component), `props` (its value: each message's
// "active/count/role"), `trigger` (sends an event to Python) and `watch` in scope.
// It draws the buttons on each message, handles the keyboard shortcuts and the help dialog, the
// dark mode switch, the token counter's debounce and, on a phone, folds the sidebar.
const ICONS = __ICONS__;
const $ = (sel) => document.querySelector(sel);
const chatbot = () => document.getElementById('chatbot');
const clickButton = (id) => { const b = document.getElementById(id); if (b) b.click(); };

// -- the buttons on each message -----------------------------------------------------------
function versions() {
  return String(props.value || '').split(',').filter(Boolean).map((s) => {
    const [active, count, role, flag] = s.split('/');
    return { active: Number(active), count: Number(count), role, shifted: flag === 's' };
  });
}

function button(act, index, title, icon, text) {
  return `<button type="button" class="msg-btn" data-act="${act}" data-index="${index}" title="${title}" ` +
    `aria-label="${title}">${icon ? ICONS[icon] : ''}${text || ''}</button>`;
}

const SHIFTED = 'Context shifted: the oldest turns were dropped from the cache without re-reading; ' +
  'the reply may differ slightly from a fresh read';

function toolbar(i, v, last) {
  let html = '';
  if (v && v.shifted) html += `<span class="msg-shifted" role="img" tabindex="0" title="${SHIFTED}" ` +
    `aria-label="${SHIFTED}">≈ shifted</span>`;
  if (v && v.count > 1) {
    html += button('prev', i, 'Previous version', 'left') +
      `<span class="msg-version" title="Version ${v.active} of ${v.count}">${v.active}/${v.count}</span>` +
      button('next', i, 'Next version', 'right');
  }
  if (last && v && v.role === 'a') html += button('continue', i, 'Continue this reply', 'continue');
  html += button('branch', i, 'Branch: a new chat from here', 'branch');
  html += button('delete', i, 'Delete this message', 'trash');
  return html;
}

function buttonsOf(row) {
  // Gradio draws a message's own buttons (copy, edit, retry) in the element after its row
  let host = row.nextElementSibling;
  if (!host || !host.classList.contains('message-buttons')) {
    host = document.createElement('div');
    host.className = 'message-buttons webui-buttons';
    row.after(host);
  }
  return host;
}

function decorate() {
  const box = chatbot();
  if (!box) return;
  const rows = [...box.querySelectorAll('.message-row')];
  const vs = versions();
  if (rows.length !== vs.length) return;  // the value and the chat are being updated: next time
  rows.forEach((row, i) => {
    const v = vs[i];
    const last = i === rows.length - 1;
    const key = `${i}:${v.active}/${v.count}/${v.role}/${v.shifted}:${last}`;
    const host = buttonsOf(row);
    host.classList.toggle('last-message', last);
    if (v.role === 'u') host.classList.add('user-buttons');
    let bar = host.querySelector('.msg-tools');
    if (bar && bar.dataset.key === key) return;
    if (!bar) {
      bar = document.createElement('div');
      bar.className = 'msg-tools';
      host.appendChild(bar);
    }
    bar.dataset.key = key;
    bar.dataset.index = String(i);
    bar.innerHTML = toolbar(i, v, last);
  });
}

function act(action, index) {
  if (action === 'continue') { clickButton('continue'); return; }
  if (action === 'regenerate') { clickButton('regenerate'); return; }
  if (action === 'delete' && !confirm('Delete this message?')) return;
  trigger('click', { action, index: Number(index) });
}

document.addEventListener('click', (e) => {
  const b = e.target.closest && e.target.closest('.msg-tools .msg-btn');
  if (!b) return;
  e.preventDefault();
  e.stopPropagation();  // not a click on the message (Gradio would select it)
  act(b.dataset.act, b.dataset.index);
}, true);

let observed = null;
const observer = new MutationObserver(() => requestAnimationFrame(decorate));
function follow() {
  const box = chatbot();
  if (box && box !== observed) {
    observer.disconnect();
    observer.observe(box, { childList: true, subtree: true });
    observed = box;
    decorate();
  }
}
setInterval(follow, 1000);
follow();
watch('value', () => { decorate(); countSoon(); });

// -- keyboard shortcuts ------------------------------------------------------------------
const lastIndex = () => versions().length - 1;
const lastIsReply = () => { const v = versions(); return v.length > 0 && v[v.length - 1].role === 'a'; };
const streaming = () => { const b = $('#live-reply'); return !!b && !b.hidden; };

function typingIn(target) {
  // "chat": the chat's message box; "field": another text field (or a select); null: neither
  const el = target && target.closest ? target : null;
  if (!el) return null;
  if (el.closest('#chat-input')) return 'chat';
  if (el.isContentEditable || /^(INPUT|TEXTAREA|SELECT)$/.test(el.tagName)) return 'field';
  return null;
}

function shortcut(e) {
  const where = typingIn(e.target);
  const key = e.key;
  if (key === 'Escape') {
    if (!helpBox().hidden) return 'close-help';
    return streaming() ? 'stop' : null;
  }
  if (where === 'field') return null;  // another field: its keys are its own
  const ctrl = e.ctrlKey || e.metaKey;
  if (key === 'Enter' && ctrl && !e.shiftKey && !e.altKey) return 'regenerate';
  if (key === 'Enter' && e.altKey && !ctrl) return 'continue';
  if (key === 'Backspace' && ctrl && e.shiftKey) return 'remove-last';
  if ((key === 'M' || key === 'm') && ctrl && e.shiftKey) return 'impersonate';
  if (where !== null || ctrl || e.altKey) return null;  // in the message box, arrows move the caret
  if (key === 'ArrowLeft') return 'prev';
  if (key === 'ArrowRight') return 'next';
  if (key === '?') return 'help';
  return null;
}

document.addEventListener('keydown', (e) => {
  if (e.defaultPrevented || e.isComposing) return;
  const name = shortcut(e);
  if (!name) return;
  if ((name === 'prev' || name === 'next') && !lastIsReply()) return;
  e.preventDefault();
  e.stopPropagation();  // Ctrl+Enter in the message box must not also send it
  if (name === 'stop') clickButton('stop');
  else if (name === 'regenerate' || name === 'continue') { if (lastIsReply()) clickButton(name); }
  else if (name === 'impersonate') clickButton('impersonate');
  else if (name === 'remove-last') { if (lastIsReply()) trigger('click', { action: 'delete', index: lastIndex() }); }
  else if (name === 'prev' || name === 'next') trigger('click', { action: name, index: lastIndex() });
  else if (name === 'help') toggleHelp();
  else if (name === 'close-help') toggleHelp(false);
}, true);

// -- the help dialog and the dark mode switch (the component's own buttons) ----------------
function helpBox() { return element.querySelector('.shortcut-help'); }
function toggleHelp(show) {
  const box = helpBox();
  box.hidden = show === undefined ? !box.hidden : !show;
}

const THEME_KEY = 'webui-theme';
function applyTheme(mode) {
  document.body.classList.toggle('dark', mode === 'dark');
}
function currentTheme() { return document.body.classList.contains('dark') ? 'dark' : 'light'; }
const saved = localStorage.getItem(THEME_KEY);
if (saved === 'dark' || saved === 'light') applyTheme(saved);  // else Gradio follows the system's

element.addEventListener('click', (e) => {
  const b = e.target.closest('button');
  if (!b) return;
  if (b.classList.contains('theme-toggle')) {
    const next = currentTheme() === 'dark' ? 'light' : 'dark';
    applyTheme(next);
    localStorage.setItem(THEME_KEY, next);
  } else if (b.classList.contains('help-toggle')) {
    toggleHelp();
  } else if (b.classList.contains('help-close')) {
    toggleHelp(false);
  }
});

// -- the token counter: asked for once typing pauses --------------------------------------
let countTimer = null;
function countSoon() {
  clearTimeout(countTimer);
  countTimer = setTimeout(() => trigger('input'), 400);
}
document.addEventListener('input', (e) => { if (typingIn(e.target) === 'chat') countSoon(); }, true);

// -- a phone: the sidebar and the chat settings start folded, the chat gets the screen -----
if (window.matchMedia('(max-width: 700px)').matches) {
  setTimeout(() => {
    const side = document.querySelector('.sidebar.open');
    const toggle = side && side.querySelector('.toggle-button');
    if (toggle) toggle.click();
    const settings = document.querySelector('#chat-settings-box > .label-wrap.open, #chat-settings-box > button.open');
    if (settings) settings.click();
  }, 300);
}
