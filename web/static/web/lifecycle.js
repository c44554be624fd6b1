/*
 * GoChat web client, issue 10: what people expect of a chat once it works.
 *
 * Loaded after chat.js and built only on its extension points (window.GoChat): frame
 * handlers, message and conversation-row decorators, compose hooks. It adds
 *   - read receipts: "Read" (one-to-one) and "Read by N" (groups) under own messages;
 *   - typing: "Alice is typing…" from `typing` frames, and `typing` sent while typing;
 *   - a message menu, by mouse and keyboard: reply, react, edit, recall, delete for me;
 *   - replies (a quoted preview above the composer and in the message), reactions;
 *   - attachments by button and by drag and drop, with image previews;
 *   - mention autocomplete in groups, highlighted mentions, the mention badge.
 * Everything the user typed reaches the page as text nodes only, never as markup.
 */
"use strict";

(() => {
  const G = window.GoChat;
  if (!G) return;
  const { state, el } = G;
  const $ = (id) => document.getElementById(id);

  const EMOJIS = ["👍", "❤️", "😂", "😮", "😢", "🎉"];
  const TYPING_SEND_EVERY_MS = 3000; // the server throttles at 2 s; no point sending more
  const TYPING_SHOW_MS = 5000; // a typing event is shown this long unless renewed
  const MEMBER_PAGES = 5; // mention autocomplete reads at most 5 x 100 members
  const MENTION_RE = /@[\w.\-]+/g;

  const lc = {
    myReactions: new Map(), // message id -> my emoji ("me" is not in update frames)
    peerRead: new Map(), // single conversation id -> the peer's read seq (receipt frames)
    groupReads: new Map(), // group conversation id -> Map(user id -> last_read_seq), or "loading"
    typing: new Map(), // conversation id -> Map(user id -> {name, until})
    typingSentAt: new Map(), // conversation id -> ms of the last typing frame sent
    typingTimer: null,
    replyTo: null, // {conversationId, message}
    editing: null, // {id, draft}
    members: new Map(), // conversation id -> Promise of [{id, username, nickname}]
    memberList: new Map(), // conversation id -> [{...}] once loaded
    menu: null, // {node, item, message, onClose}
    mention: null, // {start, end, items, index}
  };

  const myId = () => (G.me() ? G.me().id : null);
  const activeConv = () => state.convs.get(state.activeId);

  function findMessage(convId, messageId) {
    const chat = state.chats.get(convId);
    if (!chat) return null;
    for (const m of chat.messages.values()) if (m.id === messageId) return m;
    return null;
  }

  function messageItem(messageId) {
    return document.querySelector(`#message-list li.message[data-id="${CSS.escape(String(messageId))}"]`);
  }

  function focusMessage(messageId) {
    const item = messageItem(messageId);
    if (item) item.focus();
  }

  function snippet(m) {
    if (!m) return "";
    if (m.status === "recalled") return "Message recalled";
    if (m.content) return m.content.length > 100 ? `${m.content.slice(0, 100)}…` : m.content;
    if (m.attachment) return `📎 ${m.attachment.name || "Attachment"}`;
    if (m.message_type && m.message_type !== "text") return m.message_type === "image" ? "📷 Photo" : "📎 File";
    return "";
  }

  function humanSize(bytes) {
    if (!Number.isFinite(bytes)) return "";
    if (bytes < 1024) return `${bytes} B`;
    if (bytes < 1024 * 1024) return `${(bytes / 1024).toFixed(1)} KB`;
    return `${(bytes / 1024 / 1024).toFixed(1)} MB`;
  }

  // --- page pieces this file adds -------------------------------------------------------------

  function buildUi() {
    const composer = $("composer");
    const pane = $("chat-pane");

    const typing = el("div", "typing-indicator");
    typing.id = "typing-indicator";
    typing.setAttribute("aria-live", "polite");
    typing.hidden = true;

    const reply = el("div", "reply-bar");
    reply.id = "reply-bar";
    reply.hidden = true;
    const replyText = el("div", "reply-bar-text");
    replyText.append(el("span", "reply-bar-title"), el("span", "reply-bar-snippet"));
    const replyCancel = el("button", "ghost small reply-cancel", "✕");
    replyCancel.type = "button";
    replyCancel.setAttribute("aria-label", "Cancel reply");
    replyCancel.addEventListener("click", () => { setReply(null); $("composer-input").focus(); });
    reply.append(replyText, replyCancel);

    const upload = el("div", "upload-status");
    upload.id = "upload-status";
    upload.setAttribute("role", "status");
    upload.hidden = true;

    const mentions = el("ul", "mention-list");
    mentions.id = "mention-list";
    mentions.setAttribute("role", "listbox");
    mentions.setAttribute("aria-label", "Mention a member");
    mentions.hidden = true;

    pane.insertBefore(typing, composer);
    pane.insertBefore(reply, composer);
    pane.insertBefore(upload, composer);
    pane.insertBefore(mentions, composer);

    const attach = el("button", "ghost attach-button");
    attach.type = "button";
    // A drawn paper clip: an emoji would depend on the system's fonts.
    attach.innerHTML = '<svg viewBox="0 0 24 24" width="20" height="20" aria-hidden="true" fill="none" stroke="currentColor" stroke-width="2" stroke-linecap="round" stroke-linejoin="round"><path d="M21.4 11.1l-9.2 9.2a6 6 0 0 1-8.5-8.5l9.2-9.2a4 4 0 0 1 5.7 5.7l-9.2 9.2a2 2 0 0 1-2.8-2.8l8.5-8.5"/></svg>';
    attach.id = "attach-button";
    attach.title = "Attach a file (or drop it on the conversation)";
    attach.setAttribute("aria-label", "Attach a file");
    const input = document.createElement("input");
    input.type = "file";
    input.id = "attach-input";
    input.multiple = true;
    input.hidden = true;
    attach.addEventListener("click", () => input.click());
    input.addEventListener("change", () => {
      const files = Array.from(input.files || []);
      input.value = "";
      uploadAll(files);
    });
    composer.insertBefore(attach, composer.firstChild);
    composer.append(input);

    const drop = el("div", "drop-overlay", "Drop files to send them");
    drop.id = "drop-overlay";
    drop.hidden = true;
    pane.append(drop);
    bindDrop(pane, drop);

    const textarea = $("composer-input");
    textarea.addEventListener("input", () => { sendTyping(); updateMention(); });
    textarea.addEventListener("click", updateMention);
    // Leaving the composer closes the list (later, so a click on an option lands first),
    // unless the focus came back meanwhile.
    textarea.addEventListener("blur", () => setTimeout(() => { if (document.activeElement !== textarea) closeMention(); }, 150));
    // Capture on the form: runs before chat.js's Enter-sends listener on the textarea.
    composer.addEventListener("keydown", composerKeydown, true);

    const members = $("group-members");
    if (members) new MutationObserver(decorateMemberPanel).observe(members, { childList: true });

    // A different conversation opened (the header's title changes): reset what belongs to
    // the one left behind.
    new MutationObserver(onConversationSwitch).observe($("chat-title"), { childList: true, characterData: true, subtree: true });

    document.addEventListener("mousedown", (e) => {
      if (lc.menu && !lc.menu.node.contains(e.target)) closeMenu(false);
    });
    window.addEventListener("resize", () => closeMenu(false));
    $("messages").addEventListener("scroll", () => closeMenu(false));
  }

  let lastConvId = null;
  function onConversationSwitch() {
    if (state.activeId === lastConvId) return;
    lastConvId = state.activeId;
    closeMenu(false);
    closeMention();
    lc.editing = null;
    if (lc.replyTo && lc.replyTo.conversationId !== state.activeId) setReply(null);
    if ($("upload-status") && $("upload-status").classList.contains("error")) setUploadStatus("");
    renderTyping();
  }

  // --- read receipts ----------------------------------------------------------------------------

  // The peer's read seq in a one-to-one chat: the list's peer_last_read_seq (null when the
  // peer turned receipts off) raised by live `receipt` frames.
  function peerReadSeq(conv) {
    const live = lc.peerRead.get(conv.id);
    const listed = conv.peer_last_read_seq;
    if (listed === null || listed === undefined) return live === undefined ? null : live;
    return Math.max(listed, live || 0);
  }

  function loadGroupReads(convId) {
    if (lc.groupReads.has(convId)) return;
    lc.groupReads.set(convId, "loading");
    G.api("GET", `conversations/${convId}/receipts`).then((data) => {
      const reads = new Map();
      for (const r of (data && data.members) || []) reads.set(String(r.user_id), r.last_read_seq || 0);
      lc.groupReads.set(convId, reads);
      if (convId === state.activeId) G.renderMessages();
    }).catch(() => { lc.groupReads.delete(convId); });
  }

  // Members other than the sender who read up to the message; from the receipts endpoint and
  // frames once loaded, else the history's read_count.
  function readCount(m, conv) {
    const reads = lc.groupReads.get(conv.id);
    if (!(reads instanceof Map)) return m.read_count || 0;
    let n = 0;
    for (const [userId, seq] of reads) if (userId !== String(m.sender_id) && seq >= m.seq) n += 1;
    return Math.max(n, 0);
  }

  function onReceipt(data) {
    const convId = String(data.conversation_id);
    const conv = state.convs.get(convId);
    if (!conv || String(data.user_id) === String(myId())) return;
    const seq = Number(data.seq) || 0;
    if (conv.type === "group") {
      const reads = lc.groupReads.get(convId);
      if (reads instanceof Map) reads.set(String(data.user_id), Math.max(reads.get(String(data.user_id)) || 0, seq));
      else if (!reads) {
        // Not loaded yet: bump the counts history gave, for own messages up to seq.
        const chat = state.chats.get(convId);
        if (chat) for (const m of chat.messages.values()) if (m.seq <= seq && m.sender_id === myId()) m.read_count = (m.read_count || 0) + 1;
      }
    } else {
      lc.peerRead.set(convId, Math.max(lc.peerRead.get(convId) || 0, seq));
    }
    if (convId === state.activeId) G.renderMessages();
  }

  function decorateReceipt(item, m, ctx) {
    const conv = ctx.conversation;
    if (!ctx.mine || ctx.pending || !conv || !m.seq || m.status === "recalled") return;
    if (conv.type === "group") {
      const n = readCount(m, conv);
      if (n > 0) {
        // In the meta line in place of "Sent" where there is one, else on its own line.
        let label = item.querySelector(".meta .state");
        if (label) { label.textContent = `Read by ${n}`; label.classList.add("receipt"); }
        else { label = el("div", "receipt", `Read by ${n}`); item.append(label); }
        label.dataset.readCount = String(n);
      }
      return;
    }
    const peer = peerReadSeq(conv);
    if (peer === null || m.seq > peer) return;
    // "Read" only under the newest own message the peer has read.
    const chat = state.chats.get(conv.id);
    let newest = 0;
    if (chat) for (const other of chat.messages.values()) if (other.sender_id === myId() && other.seq <= peer && other.seq > newest) newest = other.seq;
    if (m.seq !== newest) return;
    const stateLabel = item.querySelector(".meta .state");
    if (stateLabel) stateLabel.textContent = "Read";
    else item.append(el("div", "receipt", "Read"));
    item.dataset.read = "true";
  }

  // --- typing -----------------------------------------------------------------------------------

  function sendTyping() {
    const convId = state.activeId;
    if (!convId || !$("composer-input").value.trim()) return;
    const now = Date.now();
    if (now - (lc.typingSentAt.get(convId) || 0) < TYPING_SEND_EVERY_MS) return;
    if (G.wsSend({ type: "typing", data: { conversation_id: convId } })) lc.typingSentAt.set(convId, now);
  }

  function onTyping(data) {
    const convId = String(data.conversation_id);
    if (String(data.user_id) === String(myId()) || !state.convs.has(convId)) return;
    if (!lc.typing.has(convId)) lc.typing.set(convId, new Map());
    lc.typing.get(convId).set(String(data.user_id), { name: data.user_name || "Someone", until: Date.now() + TYPING_SHOW_MS });
    renderTyping();
  }

  function stopTyping(convId, userId) {
    const typers = lc.typing.get(String(convId));
    if (typers && typers.delete(String(userId))) renderTyping();
  }

  function renderTyping() {
    const node = $("typing-indicator");
    if (!node) return;
    const now = Date.now();
    const typers = lc.typing.get(state.activeId);
    const names = [];
    let next = Infinity;
    if (typers) {
      for (const [userId, t] of typers) {
        if (t.until <= now) typers.delete(userId);
        else { names.push(t.name); next = Math.min(next, t.until); }
      }
    }
    if (!names.length) { node.hidden = true; node.textContent = ""; }
    else {
      node.hidden = false;
      node.textContent = names.length === 1 ? `${names[0]} is typing…`
        : names.length === 2 ? `${names[0]} and ${names[1]} are typing…` : "Several people are typing…";
    }
    clearTimeout(lc.typingTimer);
    if (next !== Infinity) lc.typingTimer = setTimeout(renderTyping, next - now + 20);
  }

  // --- the message menu -------------------------------------------------------------------------

  function menuActions(m, conv) {
    const mine = m.sender_id === myId();
    const live = m.status !== "recalled";
    const actions = [];
    if (live) actions.push({ key: "reply", label: "Reply", run: () => setReply(m) });
    if (live) actions.push({ key: "react", label: "React…", run: (item) => openPicker(item, m) });
    if (live && mine && (m.message_type || "text") === "text") actions.push({ key: "edit", label: "Edit", run: () => startEdit(m) });
    const admin = conv && conv.type === "group" && conv.group && ["owner", "admin"].includes(conv.group.my_role || conv.my_role);
    if (live && (mine || admin)) actions.push({ key: "recall", label: "Recall", run: () => recall(m) });
    actions.push({ key: "hide", label: "Delete for me", run: () => hide(m) });
    return actions;
  }

  function placePopup(node, anchor, point) {
    document.body.append(node);
    const box = node.getBoundingClientRect();
    const rect = anchor.getBoundingClientRect();
    let left = point ? point.x : (anchor.classList.contains("mine") ? rect.right - box.width : rect.left);
    let top = point ? point.y : rect.bottom + 4;
    if (top + box.height > window.innerHeight - 8) top = Math.max(8, (point ? point.y : rect.top) - box.height - 4);
    left = Math.max(8, Math.min(left, window.innerWidth - box.width - 8));
    node.style.left = `${left}px`;
    node.style.top = `${top}px`;
  }

  // A popup list of buttons driven by the keyboard: arrows move, Home/End jump, Escape closes
  // and gives the focus back to the message.
  function openPopup(item, m, buttons, { className, label, horizontal = false, point = null }) {
    closeMenu(false);
    const node = el("div", `popup-menu ${className}`);
    node.setAttribute("role", "menu");
    node.setAttribute("aria-label", label);
    if (horizontal) node.setAttribute("aria-orientation", "horizontal");
    for (const b of buttons) {
      const button = el("button", "popup-item", b.label);
      button.type = "button";
      button.setAttribute("role", "menuitem");
      button.dataset.action = b.key;
      if (b.title) button.title = b.title;
      if (b.pressed) button.classList.add("pressed");
      button.addEventListener("click", () => {
        closeMenu(b.key !== "react" && b.key !== "edit" && b.key !== "reply");
        b.run(item);
      });
      node.append(button);
    }
    node.addEventListener("keydown", (e) => {
      const items = Array.from(node.querySelectorAll(".popup-item"));
      const at = items.indexOf(document.activeElement);
      const back = horizontal ? "ArrowLeft" : "ArrowUp";
      const forward = horizontal ? "ArrowRight" : "ArrowDown";
      let to = null;
      if (e.key === forward) to = (at + 1) % items.length;
      else if (e.key === back) to = (at - 1 + items.length) % items.length;
      else if (e.key === "Home") to = 0;
      else if (e.key === "End") to = items.length - 1;
      else if (e.key === "Escape") { e.preventDefault(); e.stopPropagation(); closeMenu(true); return; }
      else if (e.key === "Tab") { e.preventDefault(); closeMenu(true); return; }
      if (to !== null) { e.preventDefault(); items[to].focus(); }
    });
    placePopup(node, item, point);
    lc.menu = { node, messageId: m.id };
    item.classList.add("menu-open");
    const first = node.querySelector(".popup-item.pressed") || node.querySelector(".popup-item");
    if (first) first.focus();
  }

  function closeMenu(refocus) {
    if (!lc.menu) return;
    const { node, messageId } = lc.menu;
    lc.menu = null;
    node.remove();
    const item = messageItem(messageId);
    if (item) item.classList.remove("menu-open");
    if (refocus) focusMessage(messageId);
  }

  function openMenu(item, m, point) {
    const conv = state.convs.get(m.conversation_id);
    openPopup(item, m, menuActions(m, conv), { className: "msg-menu", label: "Message actions", point });
  }

  function openPicker(item, m) {
    const current = lc.myReactions.get(m.id);
    const buttons = EMOJIS.map((emoji) => ({
      key: `emoji-${emoji}`,
      label: emoji,
      title: current === emoji ? `Remove ${emoji}` : `React ${emoji}`,
      pressed: current === emoji,
      run: () => react(m, current === emoji ? "" : emoji),
    }));
    // The item may have been re-rendered since the menu opened: anchor on the live node.
    openPopup(messageItem(m.id) || item, m, buttons, { className: "emoji-picker", label: "React with", horizontal: true });
  }

  function decorateMenu(item, m, ctx) {
    if (ctx.pending || !m.id) return;
    item.tabIndex = 0;
    item.setAttribute("aria-label", `${m.sender_name || "Someone"}: ${snippet(m)}`);
    const button = el("button", "msg-menu-button", "⋯");
    button.type = "button";
    button.tabIndex = -1; // the message itself is the keyboard stop; Enter opens the menu
    button.setAttribute("aria-label", "Message actions");
    button.setAttribute("aria-haspopup", "menu");
    button.addEventListener("click", (e) => { e.stopPropagation(); openMenu(item, m); });
    item.append(button);
    item.addEventListener("keydown", (e) => {
      if (e.target !== item) return;
      if (e.key === "Enter" || e.key === "ContextMenu" || (e.key === "F10" && e.shiftKey)) {
        e.preventDefault();
        openMenu(item, m);
      } else if (e.key === "ArrowUp" || e.key === "ArrowDown") {
        // Arrow keys walk the messages.
        const all = Array.from(document.querySelectorAll("#message-list li.message[data-id]"));
        const next = all[all.indexOf(item) + (e.key === "ArrowUp" ? -1 : 1)];
        if (next) { e.preventDefault(); next.focus(); }
      }
    });
    item.addEventListener("contextmenu", (e) => {
      if (e.target.closest("a, textarea")) return;
      e.preventDefault();
      openMenu(item, m, { x: e.clientX, y: e.clientY });
    });
  }

  // --- edit, recall, delete for me --------------------------------------------------------------

  function startEdit(m) {
    lc.editing = { id: m.id, draft: m.content };
    G.renderMessages();
  }

  function decorateEdit(item, m, ctx) {
    if (!lc.editing || lc.editing.id !== m.id || ctx.pending) return;
    const bubble = item.querySelector(".bubble");
    const box = el("div", "edit-box");
    const input = document.createElement("textarea");
    input.className = "edit-input";
    input.rows = 2;
    input.value = lc.editing.draft;
    input.setAttribute("aria-label", "Edit message");
    input.addEventListener("input", () => { if (lc.editing) lc.editing.draft = input.value; });
    input.addEventListener("keydown", (e) => {
      e.stopPropagation();
      if (e.key === "Escape") { e.preventDefault(); cancelEdit(m.id); }
      else if (e.key === "Enter" && !e.shiftKey && !e.isComposing) { e.preventDefault(); saveEdit(m, input.value); }
    });
    const row = el("div", "edit-actions");
    const save = el("button", "primary small", "Save");
    save.type = "button";
    save.addEventListener("click", () => saveEdit(m, input.value));
    const cancel = el("button", "ghost small", "Cancel");
    cancel.type = "button";
    cancel.addEventListener("click", () => cancelEdit(m.id));
    row.append(el("span", "muted small", "Enter to save · Esc to cancel"), save, cancel);
    box.append(input, row);
    bubble.replaceWith(box);
    // After renderMessages has put the item in the page (same task), also when a re-render
    // (a receipt, an update) rebuilt the editor.
    queueMicrotask(() => {
      if (input.isConnected && document.activeElement !== input) {
        input.focus();
        input.setSelectionRange(input.value.length, input.value.length);
      }
    });
  }

  function cancelEdit(messageId) {
    lc.editing = null;
    G.renderMessages();
    focusMessage(messageId);
  }

  function saveEdit(m, content) {
    if (!content.trim()) { G.toast("A message cannot be empty: recall it instead."); return; }
    lc.editing = null;
    if (content !== m.content) {
      // The server answers every member's sockets, this one included, with an `update`.
      G.wsSend({ type: "edit-message", data: { conversation_id: m.conversation_id, message_id: m.id, content } })
        || G.api("PATCH", `messages/${m.id}`, { content }).then((data) => applyUpdate("edit", data.message || data)).catch((err) => G.toast(G.errorText(err)));
    }
    G.renderMessages();
    focusMessage(m.id);
  }

  function recall(m) {
    G.wsSend({ type: "recall-message", data: { conversation_id: m.conversation_id, message_id: m.id } })
      || G.api("POST", `messages/${m.id}/recall`).then((data) => applyUpdate("recall", data.message || data)).catch((err) => G.toast(G.errorText(err)));
  }

  function hide(m) {
    if (!G.wsSend({ type: "hide-message", data: { message_id: m.id } })) {
      G.api("POST", `messages/${m.id}/hide`).catch((err) => G.toast(G.errorText(err)));
    }
    hideLocally(m.conversation_id, m.seq);
  }

  function hideLocally(convId, seq) {
    const chat = state.chats.get(String(convId));
    if (!chat) return;
    const m = chat.messages.get(seq);
    chat.messages.delete(seq);
    G.addMessages(String(convId), [], [seq]);
    if (m && lc.replyTo && lc.replyTo.message.id === m.id) setReply(null);
    if (String(convId) === state.activeId) G.renderMessages();
  }

  function react(m, emoji) {
    if (emoji) lc.myReactions.set(m.id, emoji);
    else lc.myReactions.delete(m.id);
    if (!G.wsSend({ type: "react", data: { message_id: m.id, emoji } })) {
      const call = emoji ? G.api("PUT", `messages/${m.id}/reaction`, { emoji }) : G.api("DELETE", `messages/${m.id}/reaction`);
      call.then((data) => { if (data && (data.message || data.id)) applyUpdate("reaction", data.message || data); })
        .catch((err) => G.toast(G.errorText(err)));
    }
    G.renderMessages();
    focusMessage(m.id);
  }

  // `update {kind, message}`: the message's current state replaces what the page holds.
  function applyUpdate(kind, message) {
    if (!message || !message.conversation_id) return;
    const convId = String(message.conversation_id);
    if (kind === "hide") { hideLocally(convId, message.seq); return; }
    const chat = state.chats.get(convId);
    if (chat && chat.messages.has(message.seq)) {
      const old = chat.messages.get(message.seq);
      // Fields a frame may leave out (read_count) or send empty (an update frame's
      // reply_to, attachment and mentions are null/[] when the server did not load them)
      // stay as the page had them; a recall hides them anyway.
      const merged = { ...old, ...message };
      for (const key of ["reply_to", "attachment", "mentions"]) {
        const empty = message[key] === null || message[key] === undefined || (Array.isArray(message[key]) && !message[key].length);
        if (empty && old[key]) merged[key] = old[key];
      }
      chat.messages.set(message.seq, merged);
    }
    if (kind === "recall") {
      if (lc.editing && lc.editing.id === message.id) lc.editing = null;
      if (lc.replyTo && lc.replyTo.message.id === message.id) setReply(null);
    }
    const conv = state.convs.get(convId);
    if (conv && conv.last_message && conv.last_message.id === message.id) {
      conv.last_message.preview = message.status === "recalled" ? "Message recalled" : (message.content || "").slice(0, 120);
      G.renderConversations();
    }
    if (convId === state.activeId) G.renderMessages();
  }

  function decorateEdited(item, m) {
    if (!m.edited_at || m.status === "recalled") return;
    const bubble = item.querySelector(".bubble");
    if (!bubble) return;
    const mark = el("span", "edited", "edited");
    mark.title = `Edited ${new Date(m.edited_at).toLocaleString()}`;
    bubble.append(mark);
  }

  function decorateRecalled(item, m) {
    if (m.status === "recalled") item.classList.add("recalled");
  }

  // --- reactions --------------------------------------------------------------------------------

  function decorateReactions(item, m, ctx) {
    if (ctx.pending || !m.reactions || !m.reactions.length || m.status === "recalled") return;
    // History and sync say which one is mine; frames do not, so remember it.
    if (m.reactions.some((r) => "me" in r)) {
      const mineR = m.reactions.find((r) => r.me);
      if (mineR) lc.myReactions.set(m.id, mineR.emoji);
      else lc.myReactions.delete(m.id);
    }
    const row = el("div", "reactions");
    for (const r of m.reactions) {
      if (!r.count) continue;
      const mine = lc.myReactions.get(m.id) === r.emoji;
      const chip = el("button", mine ? "reaction me" : "reaction");
      chip.type = "button";
      chip.append(el("span", "reaction-emoji", r.emoji), el("span", "reaction-count", String(r.count)));
      chip.setAttribute("aria-pressed", String(mine));
      chip.setAttribute("aria-label", `${r.emoji} ${r.count}${mine ? ", yours: press to remove" : ""}`);
      chip.dataset.emoji = r.emoji;
      chip.addEventListener("click", () => react(m, mine ? "" : r.emoji));
      row.append(chip);
    }
    if (row.childNodes.length) item.querySelector(".bubble").after(row);
  }

  // --- replies ----------------------------------------------------------------------------------

  function setReply(m) {
    lc.replyTo = m ? { conversationId: String(m.conversation_id), message: m } : null;
    const bar = $("reply-bar");
    if (!bar) return;
    bar.hidden = !m;
    if (m) {
      bar.querySelector(".reply-bar-title").textContent = `Replying to ${m.sender_id === myId() ? "yourself" : m.sender_name || "Someone"}`;
      bar.querySelector(".reply-bar-snippet").textContent = snippet(m);
      $("composer-input").focus();
    }
  }

  function replyPreviewOf(m) {
    return {
      id: m.id, seq: m.seq, sender_id: m.sender_id, sender_name: m.sender_name,
      content: m.status === "recalled" ? "" : (m.content || "").slice(0, 100),
      message_type: m.message_type || "text", status: m.status || "normal",
    };
  }

  function decorateReply(item, m) {
    const r = m.reply_to;
    if (!r || m.status === "recalled") return;
    const quote = el("button", "reply-quote");
    quote.type = "button";
    quote.tabIndex = -1;
    quote.append(el("span", "reply-quote-name", r.sender_name || "Someone"),
      el("span", "reply-quote-text", r.status === "recalled" ? "Message recalled" : (r.content || snippet(r) || "Attachment")));
    quote.title = "Show the message replied to";
    quote.addEventListener("click", (e) => {
      e.stopPropagation();
      const target = document.querySelector(`#message-list li.message[data-seq="${r.seq}"]`);
      if (!target) { G.toast("That message is further up: scroll to load it."); return; }
      target.classList.add("found");
      target.scrollIntoView({ block: "center" });
      target.focus();
      setTimeout(() => target.classList.remove("found"), 2500);
    });
    item.querySelector(".bubble").before(quote);
  }

  // Every send (text or attachment) from the open conversation carries the reply.
  G.onCompose((convId) => {
    if (!lc.replyTo || lc.replyTo.conversationId !== convId) return null;
    const m = lc.replyTo.message;
    setReply(null);
    return { extra: { reply_to: m.id }, local: { reply_to: replyPreviewOf(m) } };
  });

  // --- attachments ------------------------------------------------------------------------------

  function bindDrop(pane, overlay) {
    let depth = 0;
    const hasFiles = (e) => e.dataTransfer && Array.from(e.dataTransfer.types || []).includes("Files");
    pane.addEventListener("dragenter", (e) => {
      if (!hasFiles(e)) return;
      e.preventDefault();
      depth += 1;
      overlay.hidden = false;
    });
    pane.addEventListener("dragover", (e) => {
      if (!hasFiles(e)) return;
      e.preventDefault();
      e.dataTransfer.dropEffect = "copy";
    });
    pane.addEventListener("dragleave", () => {
      depth = Math.max(0, depth - 1);
      if (!depth) overlay.hidden = true;
    });
    pane.addEventListener("drop", (e) => {
      if (!hasFiles(e)) return;
      e.preventDefault();
      depth = 0;
      overlay.hidden = true;
      uploadAll(Array.from(e.dataTransfer.files || []));
    });
  }

  function setUploadStatus(text, { error = false } = {}) {
    const node = $("upload-status");
    node.textContent = text || "";
    node.hidden = !text;
    node.classList.toggle("error", error);
  }

  async function postUpload(file, retry = true) {
    const body = new FormData();
    body.append("file", file, file.name);
    let res;
    try {
      res = await fetch("/api/v1/uploads", {
        method: "POST",
        headers: { Accept: "application/json", Authorization: `Bearer ${state.auth.access}` },
        body,
        credentials: "omit",
      });
    } catch {
      throw new G.ApiError(0, "network error");
    }
    if (res.status === 401 && retry && (await G.refreshTokens())) return postUpload(file, false);
    let data = null;
    try { data = await res.json(); } catch { data = null; }
    if (!res.ok) {
      const details = (data && data.details) || {};
      let message = (data && data.message) || `upload failed (${res.status})`;
      if (details.max_bytes) message = `${file.name} is too large (at most ${humanSize(Number(details.max_bytes))}).`;
      else if (details.allowed_types) message = `${file.name}: this type of file cannot be sent.`;
      else if (details.file) message = `${file.name}: ${[].concat(details.file).join(" ")}`;
      throw new G.ApiError(res.status, message, data && data.code, details);
    }
    return data;
  }

  async function uploadAll(files) {
    const convId = state.activeId;
    if (!convId || !files.length) return;
    for (const file of files) {
      setUploadStatus(`Uploading ${file.name}…`);
      try {
        const att = await postUpload(file);
        const type = att.content_type && att.content_type.startsWith("image/") && att.thumbnail_url ? "image" : "file";
        G.sendText(convId, "", { extra: { attachment_id: String(att.attachment_id), message_type: type }, local: { attachment: att, message_type: type } });
        setUploadStatus("");
      } catch (err) {
        setUploadStatus(err instanceof G.ApiError ? err.message : "The upload failed.", { error: true });
        return;
      }
    }
  }

  function decorateAttachment(item, m) {
    const att = m.attachment;
    if (!att || m.status === "recalled") return;
    const bubble = item.querySelector(".bubble");
    if (!bubble) return;
    const box = el("div", "attachment");
    if (att.thumbnail_url) {
      const link = document.createElement("a");
      link.className = "attachment-image";
      link.href = att.url;
      link.target = "_blank";
      link.rel = "noopener noreferrer";
      const img = document.createElement("img");
      img.src = att.thumbnail_url;
      img.alt = att.name || "image";
      img.loading = "lazy";
      if (att.width && att.height) {
        const scale = Math.min(1, 240 / Math.max(att.width, att.height));
        img.width = Math.round(att.width * scale);
        img.height = Math.round(att.height * scale);
      }
      link.append(img);
      box.append(link);
    } else {
      const link = document.createElement("a");
      link.className = "attachment-file";
      link.href = att.url;
      link.target = "_blank";
      link.rel = "noopener noreferrer";
      link.download = att.name || "";
      link.append(el("span", "attachment-icon", "📄"), el("span", "attachment-name", att.name || "file"),
        el("span", "attachment-size", humanSize(att.size)));
      box.append(link);
    }
    bubble.prepend(box);
    bubble.classList.add("has-attachment");
  }

  // --- mentions ---------------------------------------------------------------------------------

  function loadMembers(conv) {
    if (lc.members.has(conv.id)) return lc.members.get(conv.id);
    const load = (async () => {
      const users = [];
      let after = null;
      for (let page = 0; page < MEMBER_PAGES; page += 1) {
        const q = after ? `&after=${encodeURIComponent(after)}` : "";
        const data = await G.api("GET", `groups/${conv.group.id}/members?limit=100${q}`);
        for (const member of data.members || []) if (member.user) users.push(member.user);
        after = data.next;
        if (!after) break;
      }
      lc.memberList.set(conv.id, users);
      return users;
    })();
    load.catch(() => lc.members.delete(conv.id));
    lc.members.set(conv.id, load);
    return load;
  }

  // The "@partial" just before the caret, if any.
  function mentionQuery(input) {
    const upto = input.value.slice(0, input.selectionStart);
    const match = /(^|\s)@([\w.\-]*)$/.exec(upto);
    if (!match) return null;
    return { start: upto.length - match[2].length - 1, end: input.selectionStart, text: match[2].toLowerCase() };
  }

  async function updateMention() {
    const input = $("composer-input");
    const conv = activeConv();
    const q = conv && conv.type === "group" && conv.group ? mentionQuery(input) : null;
    if (!q) { closeMention(); return; }
    let users;
    try {
      users = await loadMembers(conv);
    } catch {
      // One more try (a busy server, a token being refreshed) before giving up.
      await new Promise((resolve) => setTimeout(resolve, 400));
      try { users = await loadMembers(conv); } catch { closeMention(); return; }
    }
    const now = mentionQuery(input);
    if (!now || now.start !== q.start || state.activeId !== conv.id) return; // typed on meanwhile
    const items = users.filter((u) => u.id !== myId()
      && ((u.username || "").toLowerCase().startsWith(now.text) || (u.nickname || "").toLowerCase().startsWith(now.text)))
      .slice(0, 6);
    if (!items.length) { closeMention(); return; }
    const keep = lc.mention && lc.mention.items[lc.mention.index];
    const index = Math.max(0, keep ? items.findIndex((u) => u.id === keep.id) : 0);
    lc.mention = { start: now.start, end: now.end, items, index };
    renderMention();
  }

  function renderMention() {
    const list = $("mention-list");
    const mtn = lc.mention;
    list.replaceChildren();
    if (!mtn) { list.hidden = true; return; }
    mtn.items.forEach((u, i) => {
      const option = el("li", i === mtn.index ? "mention-option active" : "mention-option");
      option.id = `mention-option-${i}`;
      option.setAttribute("role", "option");
      option.setAttribute("aria-selected", String(i === mtn.index));
      option.dataset.username = u.username;
      option.append(el("strong", "", G.displayName(u)), el("span", "muted small", ` @${u.username}`));
      option.addEventListener("mousedown", (e) => { e.preventDefault(); insertMention(u); });
      list.append(option);
    });
    list.hidden = false;
    $("composer-input").setAttribute("aria-activedescendant", `mention-option-${mtn.index}`);
  }

  function closeMention() {
    lc.mention = null;
    const list = $("mention-list");
    if (list) { list.hidden = true; list.replaceChildren(); }
    const input = $("composer-input");
    if (input) input.removeAttribute("aria-activedescendant");
  }

  function insertMention(user) {
    const input = $("composer-input");
    const mtn = lc.mention;
    if (!mtn) return;
    const text = `@${user.username} `;
    input.value = input.value.slice(0, mtn.start) + text + input.value.slice(mtn.end);
    const caret = mtn.start + text.length;
    input.setSelectionRange(caret, caret);
    closeMention();
    input.focus();
  }

  function composerKeydown(e) {
    if (e.target !== $("composer-input")) return;
    if (lc.mention) {
      const mtn = lc.mention;
      if (e.key === "ArrowDown" || e.key === "ArrowUp") {
        mtn.index = (mtn.index + (e.key === "ArrowDown" ? 1 : mtn.items.length - 1)) % mtn.items.length;
        renderMention();
      } else if ((e.key === "Enter" || e.key === "Tab") && !e.shiftKey && !e.isComposing) {
        insertMention(mtn.items[mtn.index]);
      } else if (e.key === "Escape") {
        closeMention();
      } else {
        return;
      }
      e.preventDefault();
      e.stopImmediatePropagation();
      return;
    }
    if (e.key === "Escape" && lc.replyTo) {
      e.preventDefault();
      setReply(null);
    }
  }

  // @tokens in a message shown as mentions: of a message the server resolved mentions for,
  // or naming a member this page knows.
  function decorateMentions(item, m) {
    if (m.status === "recalled" || !m.content || !m.content.includes("@")) return;
    const known = lc.memberList.get(String(m.conversation_id)) || [];
    const names = new Set(known.map((u) => (u.username || "").toLowerCase()));
    const resolved = Array.isArray(m.mentions) && m.mentions.length > 0;
    const myName = ((G.me() && G.me().username) || "").toLowerCase();
    const bubble = item.querySelector(".bubble");
    if (!bubble) return;
    const walker = document.createTreeWalker(bubble, NodeFilter.SHOW_TEXT);
    const texts = [];
    while (walker.nextNode()) if (!walker.currentNode.parentElement.closest("a, .edited, .attachment")) texts.push(walker.currentNode);
    for (const node of texts) {
      const text = node.textContent;
      const parts = [];
      let last = 0;
      for (const match of text.matchAll(MENTION_RE)) {
        const name = match[0].slice(1).toLowerCase();
        if (!resolved && !names.has(name)) continue;
        if (match.index > 0 && /\w/.test(text[match.index - 1])) continue; // an e-mail address
        if (match.index > last) parts.push(document.createTextNode(text.slice(last, match.index)));
        const span = el("span", name === myName ? "mention mention-me" : "mention", match[0]);
        parts.push(span);
        last = match.index + match[0].length;
      }
      if (!parts.length) continue;
      if (last < text.length) parts.push(document.createTextNode(text.slice(last)));
      node.replaceWith(...parts);
    }
  }

  // The conversation list: "@" beside the unread badge while unread mentions wait.
  G.decorateConversation((item, conv) => {
    if (!conv.unread) conv.unread_mentions = 0;
    if (!conv.unread_mentions) return;
    const badge = el("span", "mention-badge", "@");
    badge.title = `You were mentioned${conv.unread_mentions > 1 ? ` ${conv.unread_mentions} times` : ""}`;
    badge.setAttribute("aria-label", `${conv.unread_mentions} unread mention${conv.unread_mentions > 1 ? "s" : ""}`);
    const bottom = item.querySelector(".conversation-bottom");
    const unread = bottom && bottom.querySelector(".badge");
    if (unread) unread.before(badge);
    else if (bottom) bottom.append(badge);
  });

  // The group panel (chat.js) lists members: each other member gets a "Mention" action that
  // puts @username into the composer.
  function decorateMemberPanel() {
    const list = $("group-members");
    if (!list) return;
    const conv = activeConv();
    for (const row of list.querySelectorAll("li.group-member")) {
      if (row.querySelector(".mention-member") || row.dataset.userId === String(myId())) continue;
      const handle = row.querySelector(".group-member-text .muted");
      const username = handle ? (/@([\w.\-]+)/.exec(handle.textContent) || [])[1] : null;
      if (!username) continue;
      const button = el("button", "ghost small mention-member", "Mention");
      button.type = "button";
      button.title = `Mention @${username}`;
      button.setAttribute("aria-label", `Mention @${username}`);
      button.addEventListener("click", () => {
        const input = $("composer-input");
        const before = input.value && !/\s$/.test(input.value) ? `${input.value} ` : input.value;
        input.value = `${before}@${username} `;
        input.dispatchEvent(new Event("input"));
        input.focus();
        if (conv && lc.memberList.has(conv.id) === false) loadMembers(conv).catch(() => {});
      });
      const actions = row.querySelector(".group-member-actions") || row;
      actions.prepend(button);
    }
  }

  // --- frames -----------------------------------------------------------------------------------

  const baseNewMessage = G.frameHandlers["new-message"];
  G.onFrame("new-message", (data, frame) => {
    const m = data.message;
    if (m) {
      stopTyping(m.conversation_id, m.sender_id);
      const conv = state.convs.get(String(m.conversation_id));
      const mentioned = Array.isArray(m.mentions) && m.mentions.map(String).includes(String(myId()));
      if (conv && mentioned && m.sender_id !== myId()) conv.unread_mentions = (conv.unread_mentions || 0) + 1;
    }
    if (baseNewMessage) baseNewMessage(data, frame);
    if (m) previewAttachment(m);
  });
  const baseSendAck = G.frameHandlers["send-ack"];
  G.onFrame("send-ack", (data, frame) => {
    if (baseSendAck) baseSendAck(data, frame);
    const chat = state.chats.get(String(data.conversation_id));
    const m = chat && chat.messages.get(data.seq);
    if (m) previewAttachment(m);
  });

  // The list's preview of a message without text: what it carries.
  function previewAttachment(m) {
    const conv = state.convs.get(String(m.conversation_id));
    if (!conv || !conv.last_message || conv.last_message.id !== m.id || conv.last_message.preview || !m.attachment) return;
    conv.last_message.preview = snippet(m);
    G.renderConversations();
  }
  G.onFrame("receipt", onReceipt);
  G.onFrame("typing", onTyping);
  G.onFrame("update", (data) => applyUpdate(data.kind, data.message));

  // Decorators run in this order on every rendered message.
  G.decorateMessage(decorateRecalled);
  G.decorateMessage(decorateAttachment);
  G.decorateMessage(decorateMentions);
  G.decorateMessage(decorateEdited);
  G.decorateMessage(decorateReply);
  G.decorateMessage(decorateReactions);
  G.decorateMessage(decorateReceipt);
  G.decorateMessage(decorateEdit);
  G.decorateMessage(decorateMenu);
  G.decorateMessage((item, m, ctx) => {
    // Group read counts come from the receipts endpoint once the group is on screen.
    if (ctx.conversation && ctx.conversation.type === "group" && ctx.mine) loadGroupReads(ctx.conversation.id);
  });

  // Exposed for tests and later features.
  G.lifecycle = { lc, setReply, uploadAll, applyUpdate };

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", buildUi);
  else buildUi();
})();
