// Attachments in the agent console: previews of images and download links for other files in every
// transcript (the current conversation and the customer's history), and the reply's own files:
// paperclip, drop or paste, each upload with its progress, a cancel and a retry. console.js calls
// window.ConsoleFiles; like it, nothing here puts data into the DOM as markup.
'use strict';

window.ConsoleFiles = (() => {
  const csrfToken = document.querySelector('meta[name="csrf-token"]').content;
  const REASONS = {
    attachment_too_large: 'Too big.',
    attachment_type_not_allowed: 'This type of file cannot be sent.',
    attachment_rejected: 'Refused by the malware check.',
    attachment_image_too_large: 'The image cannot be used.',
    attachment_corrupt: 'The image cannot be used.',
    wrong_state: 'You cannot reply in this conversation.',
  };
  let tray = []; // {file, conversationId, chip, xhr, progress, stored, error, retryable}
  let trayBox = null;
  let viewer = null;

  function el(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text != null) node.textContent = text;
    return node;
  }

  function sizeText(n) {
    if (n < 1024) return `${n} B`;
    if (n < 1048576) return `${Math.round(n / 1024)} KB`;
    return `${(n / 1048576).toFixed(1)} MB`;
  }

  // The files a message carries, or null when it has none.
  function render(m) {
    if (!m.attachments || !m.attachments.length) return null;
    const box = el('div', 'msg-files');
    for (const a of m.attachments) {
      if (a.thumbnail_url) {
        const button = el('button', 'msg-thumb');
        button.type = 'button';
        button.setAttribute('aria-label', `View ${a.name}`);
        const img = el('img');
        img.src = a.thumbnail_url;
        img.alt = a.name;
        button.append(img);
        button.addEventListener('click', () => view(a, button));
        box.append(button);
      } else {
        const file = el('div', 'msg-file');
        const link = el('a', null, a.name);
        link.href = a.url;
        link.download = a.name;
        file.append(link, el('small', null, ` ${sizeText(a.size)} · ${a.content_type}`));
        box.append(file);
      }
    }
    return box;
  }

  function view(a, from) {
    viewer.querySelector('h2').textContent = a.name;
    const img = viewer.querySelector('img');
    img.src = a.url;
    img.alt = a.name;
    const link = viewer.querySelector('a');
    link.href = a.url;
    link.download = a.name;
    viewer.returnTo = from;
    viewer.showModal();
  }

  function mount(compose, reply, conversationId) {
    trayBox = el('div', 'compose-files');
    const pick = el('input');
    pick.type = 'file';
    pick.multiple = true;
    pick.hidden = true;
    const clip = el('button', 'attach', 'Attach files');
    clip.type = 'button';
    clip.addEventListener('click', () => pick.click());
    pick.addEventListener('change', () => {
      add(pick.files, conversationId());
      pick.value = '';
    });
    compose.prepend(trayBox);
    compose.append(clip, pick);
    reply.addEventListener('paste', (event) => {
      const files = event.clipboardData && event.clipboardData.files;
      if (files && files.length) {
        event.preventDefault();
        add(files, conversationId());
      }
    });
    compose.addEventListener('dragover', (event) => event.preventDefault());
    compose.addEventListener('drop', (event) => {
      if (!event.dataTransfer || !event.dataTransfer.files.length) return;
      event.preventDefault();
      add(event.dataTransfer.files, conversationId());
    });

    viewer = el('dialog', 'dialog file-viewer');
    viewer.setAttribute('aria-label', 'Attachment');
    const close = el('button', null, 'Close');
    close.type = 'button';
    close.addEventListener('click', () => viewer.close());
    viewer.addEventListener('close', () => viewer.returnTo && viewer.returnTo.focus());
    const actions = el('div', 'dialog-actions');
    actions.append(el('a', null, 'Download'), close);
    viewer.append(el('h2'), el('img'), actions);
    document.body.append(viewer);
  }

  function add(list, conversationId) {
    if (!conversationId) return;
    for (const file of Array.from(list || [])) {
      const item = { file, conversationId, chip: el('div', 'file-chip') };
      tray.push(item);
      trayBox.append(item.chip);
      upload(item);
    }
  }

  function drawChip(item) {
    const c = item.chip;
    c.replaceChildren(el('span', null, item.file.name || 'file'));
    c.classList.toggle('bad', Boolean(item.error));
    if (item.error) c.append(el('span', null, item.error));
    else if (!item.stored) {
      const bar = el('progress');
      bar.max = 1;
      bar.value = item.progress || 0;
      bar.setAttribute('aria-label', `Uploading ${item.file.name}`);
      c.append(bar);
    }
    if (item.error && item.retryable) {
      const again = el('button', null, 'Retry');
      again.type = 'button';
      again.addEventListener('click', () => upload(item));
      c.append(again);
    }
    const remove = el('button', null, '✕');
    remove.type = 'button';
    remove.setAttribute('aria-label', `Remove ${item.file.name}`);
    remove.addEventListener('click', () => {
      if (item.xhr) item.xhr.abort();
      tray = tray.filter((other) => other !== item);
      c.remove();
    });
    c.append(remove);
  }

  function upload(item) {
    item.error = null;
    item.progress = 0;
    const xhr = new XMLHttpRequest();
    item.xhr = xhr;
    drawChip(item);
    xhr.open('POST', `/console/api/conversations/${item.conversationId}/attachments?name=${
      encodeURIComponent(item.file.name || 'file')}`);
    xhr.setRequestHeader('X-CSRFToken', csrfToken);
    xhr.setRequestHeader('Content-Type', 'application/octet-stream');
    xhr.upload.addEventListener('progress', (event) => {
      item.progress = event.lengthComputable ? event.loaded / event.total : 0;
      const bar = item.chip.querySelector('progress');
      if (bar) bar.value = item.progress;
    });
    const finish = (error, retryable) => {
      item.xhr = null;
      item.error = error;
      item.retryable = retryable;
      drawChip(item);
    };
    xhr.addEventListener('error', () => finish('Upload failed.', true));
    xhr.addEventListener('load', () => {
      let data = null;
      try {
        data = JSON.parse(xhr.responseText);
      } catch {
        data = null;
      }
      if (xhr.status === 201 && data && data.attachment) {
        item.stored = data.attachment;
        finish(null);
        return;
      }
      const code = data && data.error && data.error.code;
      finish(REASONS[code] || 'Upload failed.', !REASONS[code]);
    });
    xhr.send(item.file);
  }

  // What the reply carries: the ids of this conversation's finished uploads, or why it cannot go yet.
  function pending(conversationId) {
    const mine = tray.filter((item) => item.conversationId === conversationId);
    if (mine.some((item) => !item.stored && !item.error)) return { wait: 'Wait for the uploads to finish.' };
    return { ids: mine.filter((item) => item.stored).map((item) => item.stored.id) };
  }

  // After a reply is stored, or when another conversation opens: uploads for elsewhere do not follow.
  function clear(conversationId) {
    for (const item of tray) {
      if (conversationId != null && item.conversationId !== conversationId) continue;
      if (item.xhr) item.xhr.abort();
      item.chip.remove();
    }
    tray = conversationId == null ? [] : tray.filter((item) => item.conversationId !== conversationId);
  }

  return { render, mount, pending, clear };
})();
