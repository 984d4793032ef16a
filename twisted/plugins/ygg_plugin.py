from twisted.application.service import ServiceMaker

ygg = ServiceMaker("ygg", "ygg.tap", "A Yggdrasil v0.4 mesh network node", "ygg")
