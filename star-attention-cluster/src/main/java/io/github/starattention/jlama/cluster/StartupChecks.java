package io.github.starattention.jlama.cluster;

import java.io.IOException;
import java.io.InputStream;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.GeneralSecurityException;
import java.security.KeyStore;
import java.security.UnrecoverableKeyException;
import java.util.Collections;
import java.util.Locale;

/**
 * What can be checked before a node starts Hazelcast and Vert.x, so that a wrong file, password or port fails with
 * one line naming the setting instead of a stack trace from inside them (or a bare "null"): the TLS stores open with
 * their passwords and hold what they must, and the Hazelcast and event-bus ports can be bound.
 */
final class StartupChecks {

    private StartupChecks() {
    }

    /** @throws IllegalArgumentException naming the setting that is wrong */
    static void check(ClusterOptions o) {
        ClusterOptions.Tls tls = o.tls();
        if (tls.enabled()) {
            KeyStore keys = load(tls.keyStore(), tls.resolvedKeyStorePassword(), "tls.keyStore", "tls.keyStorePassword");
            if (!hasPrivateKey(keys, tls.resolvedKeyStorePassword())) {
                throw new IllegalArgumentException("tls.keyStore " + tls.keyStore() + " holds no private key with a "
                        + "certificate: a node needs its own key pair");
            }
            KeyStore trust = load(tls.trustStore(), tls.resolvedTrustStorePassword(), "tls.trustStore",
                    "tls.trustStorePassword");
            if (!hasCertificate(trust)) {
                throw new IllegalArgumentException("tls.trustStore " + tls.trustStore() + " holds no certificate: "
                        + "it must hold the CA that signs the members' certificates");
            }
        }
        ClusterOptions.Hazelcast h = o.hazelcast();
        int last = h.portAutoIncrement() ? h.port() + 9 : h.port();
        boolean free = false;
        for (int p = h.port(); p <= last && !free; p++) {
            free = bindable(h.host(), p);
        }
        if (!free) {
            throw new IllegalArgumentException("hazelcast.port " + (last == h.port() ? h.port()
                    : h.port() + "-" + last) + " on " + h.host() + " is in use (another member or process)"
                    + (h.portAutoIncrement() ? "" : "; free it, choose another port or set hazelcast.portAutoIncrement"));
        }
        if (o.eventBus().port() != 0 && !bindable(o.eventBus().host(), o.eventBus().port())) {
            throw new IllegalArgumentException("eventBus.port " + o.eventBus().port() + " on " + o.eventBus().host()
                    + " is in use; free it, choose another port or use 0 for an ephemeral one");
        }
    }

    private static KeyStore load(Path file, String password, String what, String passwordSetting) {
        String name = file.getFileName().toString().toLowerCase(Locale.ROOT);
        String type = name.endsWith(".jks") ? "JKS" : "PKCS12";
        try (InputStream in = Files.newInputStream(file)) {
            KeyStore ks = KeyStore.getInstance(type);
            ks.load(in, password.toCharArray());
            return ks;
        } catch (IOException e) {
            if (e.getCause() instanceof UnrecoverableKeyException || String.valueOf(e.getMessage()).contains("password")) {
                throw new IllegalArgumentException(what + " " + file + " does not open with " + passwordSetting
                        + " (wrong password)");
            }
            throw new IllegalArgumentException(what + " " + file + " is not a " + (type.equals("JKS") ? "JKS"
                    : "PKCS#12") + " key store, or is damaged" + (e.getMessage() != null ? ": " + e.getMessage() : ""));
        } catch (GeneralSecurityException e) {
            throw new IllegalArgumentException(what + " " + file + " cannot be read: " + e.getMessage());
        }
    }

    private static boolean hasPrivateKey(KeyStore ks, String password) {
        try {
            for (String alias : Collections.list(ks.aliases())) {
                if (ks.isKeyEntry(alias) && ks.getCertificate(alias) != null) {
                    ks.getKey(alias, password.toCharArray());
                    return true;
                }
            }
            return false;
        } catch (GeneralSecurityException e) {
            throw new IllegalArgumentException("tls.keyStore: the private key does not open with "
                    + "tls.keyStorePassword (" + e.getMessage() + ")");
        }
    }

    private static boolean hasCertificate(KeyStore ks) {
        try {
            for (String alias : Collections.list(ks.aliases())) {
                if (ks.getCertificate(alias) != null) {
                    return true;
                }
            }
            return false;
        } catch (GeneralSecurityException e) {
            return false;
        }
    }

    private static boolean bindable(String host, int port) {
        try (ServerSocket s = new ServerSocket()) {
            s.setReuseAddress(true);
            s.bind(new InetSocketAddress(InetAddress.getByName(host), port));
            return true;
        } catch (IOException e) {
            return false;
        }
    }
}
