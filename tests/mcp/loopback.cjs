// Preloaded with `node --require` so a server that calls listen(port) with no host binds
// 127.0.0.1 only (server-everything's HTTP modes listen on every interface by default).
const net = require("node:net");
const listen = net.Server.prototype.listen;
net.Server.prototype.listen = function (...args) {
  if (typeof args[0] === "number" || typeof args[0] === "string") {
    if (args.length === 1 || typeof args[1] === "function") args.splice(1, 0, "127.0.0.1");
  }
  return listen.apply(this, args);
};
