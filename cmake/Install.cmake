# SPDX-License-Identifier: Apache-2.0
# Installation of everything that is not a compiled target (the targets' own install()
# rules are in daemon/ and client/): the systemd unit, sysusers.d and tmpfiles.d files,
# the man pages, the client library's pkg-config file, and the Debian package (CPack).
#
#   cmake --install build --prefix /usr      # or: cd build && cpack -G DEB
#
# The unit goes to /lib/systemd/system when the prefix is /usr (Debian 12's place for
# packaged units) and to PREFIX/lib/systemd/system otherwise (systemd also reads
# /usr/local/lib/systemd/system); LIAISON_SYSTEMD_UNITDIR overrides it. Its ExecStart
# names PREFIX/sbin/liaisond. Both are decided at install time, so the package built by
# cpack (prefix /usr) is right whatever prefix the build tree was configured with.

set(LIAISON_SYSTEMD_UNITDIR "" CACHE STRING
    "Where to install liaisond.service (empty: /lib/systemd/system for prefix /usr, else PREFIX/lib/systemd/system)")

# ---- systemd unit -----------------------------------------------------------------
install(CODE "
  set(_unitdir \"${LIAISON_SYSTEMD_UNITDIR}\")
  if(NOT _unitdir)
    if(CMAKE_INSTALL_PREFIX STREQUAL \"/usr\" OR CMAKE_INSTALL_PREFIX STREQUAL \"/usr/\")
      set(_unitdir \"/lib/systemd/system\")
    else()
      set(_unitdir \"\${CMAKE_INSTALL_PREFIX}/lib/systemd/system\")
    endif()
  endif()
  file(READ \"${CMAKE_CURRENT_SOURCE_DIR}/systemd/liaisond.service\" _unit)
  get_filename_component(_daemon \"\${CMAKE_INSTALL_PREFIX}/${CMAKE_INSTALL_SBINDIR}/liaisond\" ABSOLUTE)
  string(REPLACE \"/usr/sbin/liaisond\" \"\${_daemon}\" _unit \"\${_unit}\")
  file(WRITE \"${CMAKE_CURRENT_BINARY_DIR}/install/liaisond.service\" \"\${_unit}\")
  file(INSTALL DESTINATION \"\${_unitdir}\" TYPE FILE
       PERMISSIONS OWNER_READ OWNER_WRITE GROUP_READ WORLD_READ
       FILES \"${CMAKE_CURRENT_BINARY_DIR}/install/liaisond.service\")
")

# ---- users, groups and directories (systemd-sysusers, systemd-tmpfiles) -------------
# Not CMAKE_INSTALL_LIBDIR: these directories are lib/ on every architecture.
install(FILES systemd/liaison.sysusers DESTINATION lib/sysusers.d RENAME liaison.conf)
install(FILES systemd/liaison.tmpfiles DESTINATION lib/tmpfiles.d RENAME liaison.conf)

# ---- man pages --------------------------------------------------------------------
install(FILES docs/man/liaison.1 DESTINATION ${CMAKE_INSTALL_MANDIR}/man1)
install(FILES docs/man/liaison_client.3 DESTINATION ${CMAKE_INSTALL_MANDIR}/man3)
install(FILES docs/man/liaison.conf.5 DESTINATION ${CMAKE_INSTALL_MANDIR}/man5)
install(FILES docs/man/liaisond.8 DESTINATION ${CMAKE_INSTALL_MANDIR}/man8)

# ---- documents the man pages point to ------------------------------------------------
install(FILES README.md docs/PROTOCOL.md docs/PERFORMANCE.md docs/RELIABILITY.md DESTINATION ${CMAKE_INSTALL_DOCDIR})

# ---- the protocol schemas of libliaison-client ---------------------------------------
# liaison_send() and liaison_call() take serialized liaison.payload and liaison.control
# messages: an embedder generates its own code from these (protoc-c, or any protobuf
# implementation). `pkg-config --variable=protodir liaison-client` names the directory.
install(FILES proto/wire.proto proto/payload.proto proto/control.proto
        DESTINATION ${CMAKE_INSTALL_DATADIR}/liaison/proto)

# ---- pkg-config file of libliaison-client -------------------------------------------
# Written at install time so that its prefix is the one installed to (cpack uses /usr).
if(TARGET liaison-client)
  install(CODE "
    set(prefix \"\${CMAKE_INSTALL_PREFIX}\")
    set(LIAISON_PC_LIBDIR \"${CMAKE_INSTALL_LIBDIR}\")
    set(LIAISON_PC_INCLUDEDIR \"${CMAKE_INSTALL_INCLUDEDIR}\")
    set(LIAISON_PC_DATADIR \"${CMAKE_INSTALL_DATADIR}\")
    set(PROJECT_VERSION \"${PROJECT_VERSION}\")
    configure_file(\"${CMAKE_CURRENT_SOURCE_DIR}/packaging/liaison-client.pc.in\"
                   \"${CMAKE_CURRENT_BINARY_DIR}/install/liaison-client.pc\" @ONLY)
    file(INSTALL DESTINATION \"\${CMAKE_INSTALL_PREFIX}/${CMAKE_INSTALL_LIBDIR}/pkgconfig\" TYPE FILE
         FILES \"${CMAKE_CURRENT_BINARY_DIR}/install/liaison-client.pc\")
  ")
endif()

# ---- Debian package: cd build && cpack -G DEB ------------------------------------------
set(CPACK_PACKAGE_NAME "liaison")
set(CPACK_PACKAGE_VENDOR "liaison")
set(CPACK_PACKAGE_VERSION "${PROJECT_VERSION}")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "secure, audited messaging for a patient's care team")
set(CPACK_PACKAGE_CONTACT "liaison maintainers <liaison@localhost>")
set(CPACK_GENERATOR "DEB")
set(CPACK_SOURCE_GENERATOR "")
set(CPACK_PACKAGING_INSTALL_PREFIX "/usr")
set(CPACK_STRIP_FILES OFF)

set(CPACK_DEBIAN_PACKAGE_NAME "liaison")
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_SECTION "net")
set(CPACK_DEBIAN_PACKAGE_PRIORITY "optional")
set(CPACK_DEBIAN_PACKAGE_MAINTAINER "${CPACK_PACKAGE_CONTACT}")
# The synopsis is CPACK_PACKAGE_DESCRIPTION_SUMMARY; this is the extended description.
string(CONCAT CPACK_DEBIAN_PACKAGE_DESCRIPTION
    "liaison lets the providers of a patient's care team (therapist, psychiatrist,\n"
    "pharmacist, primary-care doctor) send each other end-to-end encrypted, signed\n"
    "messages with a tamper-evident audit log. This package holds the daemon liaisond\n"
    "(a hardened systemd service, not enabled on installation), the liaison command\n"
    "and the libliaison-client C library.")
# The runtime libraries of liaisond, liaison and libliaison-client (Debian 12 names).
set(CPACK_DEBIAN_PACKAGE_DEPENDS
    "libc6 (>= 2.34), libzmq5 (>= 4.3.2), libsodium23 (>= 1.0.18), libsqlite3-0 (>= 3.37), libprotobuf-c1 (>= 1.3), libinih1, libjansson4")
set(CPACK_DEBIAN_PACKAGE_RECOMMENDS "systemd")
# postinst creates the users and groups (systemd-sysusers) and the directories
# (systemd-tmpfiles) but enables and starts nothing; prerm stops a running daemon
# before removal; postrm keeps the node's keys, database and audit log even on purge.
set(CPACK_DEBIAN_PACKAGE_CONTROL_EXTRA
    "${CMAKE_CURRENT_SOURCE_DIR}/packaging/debian/postinst"
    "${CMAKE_CURRENT_SOURCE_DIR}/packaging/debian/prerm"
    "${CMAKE_CURRENT_SOURCE_DIR}/packaging/debian/postrm")
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION TRUE)
include(CPack)
