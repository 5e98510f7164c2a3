// Pushy's MockApnsServer (com.eatthepath:pushy, the fake most provider teams use), started for
// scripts/bench-http2.sh beside apnsim: same certificate, same token key, same JWT.
//
//   java -cp "target/providers/pushy/lib/*:CLASSES" PushyMock MODE PORT CERT KEY PUBKEY KEY_ID TEAM_ID TOPIC DEVICE
//
// MODE accept-all: AcceptAllPushNotificationHandlerFactory (answers 200 to everything).
// MODE validating: ValidatingPushNotificationHandlerFactory with the bench's token key (PUBKEY, a
// PEM public key) under KEY_ID/TEAM_ID for TOPIC, and DEVICE registered for TOPIC: it verifies the
// JWT's ECDSA signature (DER form only) on every request, like APNs would.
// Prints "ready" on stdout once listening; runs until killed.

import com.eatthepath.pushy.apns.auth.ApnsVerificationKey;
import com.eatthepath.pushy.apns.server.AcceptAllPushNotificationHandlerFactory;
import com.eatthepath.pushy.apns.server.MockApnsServer;
import com.eatthepath.pushy.apns.server.MockApnsServerBuilder;
import com.eatthepath.pushy.apns.server.PushNotificationHandlerFactory;
import com.eatthepath.pushy.apns.server.ValidatingPushNotificationHandlerFactory;
import io.netty.channel.nio.NioEventLoopGroup;
import java.io.File;
import java.io.FileInputStream;
import java.io.InputStream;
import java.util.Collections;
import java.util.Map;
import java.util.Set;

public final class PushyMock {
    public static void main(String[] args) throws Exception {
        if (args.length != 9) {
            System.err.println("usage: PushyMock accept-all|validating PORT CERT KEY PUBKEY KEY_ID TEAM_ID TOPIC DEVICE");
            System.exit(2);
        }
        String mode = args[0];
        int port = Integer.parseInt(args[1]);
        String topic = args[7];
        String device = args[8];
        PushNotificationHandlerFactory handler;
        if (mode.equals("accept-all")) {
            handler = new AcceptAllPushNotificationHandlerFactory();
        } else if (mode.equals("validating")) {
            ApnsVerificationKey key;
            try (InputStream in = new FileInputStream(args[4])) {
                key = ApnsVerificationKey.loadFromInputStream(in, args[6], args[5]);
            }
            Map<String, Set<String>> tokens = Collections.singletonMap(topic, Collections.singleton(device));
            Map<String, ApnsVerificationKey> keys = Collections.singletonMap(args[5], key);
            Map<ApnsVerificationKey, Set<String>> topics = Collections.singletonMap(key, Collections.singleton(topic));
            handler = new ValidatingPushNotificationHandlerFactory(tokens, Collections.emptyMap(), keys, topics);
        } else {
            throw new IllegalArgumentException("unknown mode " + mode);
        }
        MockApnsServer server = new MockApnsServerBuilder()
                .setServerCredentials(new File(args[2]), new File(args[3]), null)
                .setEventLoopGroup(new NioEventLoopGroup(Runtime.getRuntime().availableProcessors()))
                .setHandlerFactory(handler)
                .setUseAlpn(true)
                .build();
        server.start(port).get();
        System.out.println("ready");
        System.out.flush();
        Thread.currentThread().join();
    }
}
