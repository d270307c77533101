// A spout and a bolt in Node.js, written straight against Storm's multilang protocol
// (JSON messages, each followed by a line "end"). Usage: node node_components.js spout|bolt
//
// spout: emits "sentence i" (ids i = 0..N-1, N from conf "test.sentences"), re-emits
//        an id on fail, reports acks as the metric "acked"; answers every command with sync.
// bolt:  splits the sentence, emits each word upper-cased, anchored to the input and
//        asking for task ids (Storm's default), then acks; answers heartbeats with sync.
"use strict";
const fs = require("fs");
const path = require("path");

const mode = process.argv[2];
let buffer = "";
let handshook = false;
let conf = {};
const toEmit = [];
let next = 0;
let total = 0;
let emits = 0;
let taskIdReplies = 0;

function send(msg) {
  process.stdout.write(JSON.stringify(msg) + "\nend\n");
}

function onHandshake(msg) {
  conf = msg.conf;
  total = conf["test.sentences"] || 0;
  fs.writeFileSync(path.join(msg.pidDir, String(process.pid)), "");
  send({ pid: process.pid });
  send({ command: "log", msg: `node ${mode} ready, task ${msg.context.taskid}`, level: 2 });
}

function onSpoutCommand(msg) {
  if (Array.isArray(msg)) {
    taskIdReplies++; // the task ids of the last emit (Storm writes them at once for spouts)
    return;
  }
  if (msg.command === "next") {
    let id = toEmit.length ? toEmit.shift() : next < total ? next++ : null;
    if (id !== null) {
      send({ command: "emit", id: id, tuple: [`sentence ${id}`] });
    }
  } else if (msg.command === "ack") {
    send({ command: "metrics", name: "acked", params: null });
  } else if (msg.command === "fail") {
    toEmit.push(msg.id);
  }
  send({ command: "sync" });
}

function onBoltMessage(msg) {
  if (Array.isArray(msg)) {
    taskIdReplies++;
    return;
  }
  if (msg.task === -1 && msg.stream === "__heartbeat") {
    send({ command: "sync" });
    return;
  }
  for (const word of msg.tuple[0].split(" ")) {
    emits++;
    send({ command: "emit", anchors: [msg.id], tuple: [word.toUpperCase()] });
  }
  send({ command: "ack", id: msg.id });
  if (emits % 100 === 0) {
    send({ command: "log", msg: `emits ${emits}, task id replies ${taskIdReplies}`, level: 1 });
  }
}

process.stdin.setEncoding("utf8");
process.stdin.on("data", (chunk) => {
  buffer += chunk;
  let i;
  while ((i = buffer.indexOf("\nend\n")) >= 0) {
    const text = buffer.slice(0, i);
    buffer = buffer.slice(i + 5);
    if (!text.trim()) continue;
    const msg = JSON.parse(text);
    if (!handshook) {
      handshook = true;
      onHandshake(msg);
    } else if (mode === "spout") {
      onSpoutCommand(msg);
    } else {
      onBoltMessage(msg);
    }
  }
});
process.stdin.on("end", () => process.exit(2));
