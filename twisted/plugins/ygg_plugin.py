from twisted.application.service import ServiceMaker

from ygg import plugincache

plugincache.quiet()  # why: ygg/plugincache.py
ygg = ServiceMaker("ygg", "ygg.tap", "A Yggdrasil mesh network node", "ygg")
